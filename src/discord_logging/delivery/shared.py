"""What every lane of one notifier shares: the settings, and the state they all see (client,
the coordinator of the shared limits, the channel directory, dead letters, clocks)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from ..coordination import Coordinator
from ..deadletters import DeadLetterSink, StoreCalls
from ..notification import NotificationResult
from ..render.templating import EmbedRenderer
from ..stats import DeliveryStats
from ..transport.channels import ChannelDirectory
from ..transport.client import WebhookClient
from .backoff import jitter
from .bugs import BugReporter
from .incidents import IncidentConfig
from .pending import Pending


@dataclass(slots=True)
class LaneConfig:
    """Settings every lane shares."""

    queue_size: int = 100
    rate_limit: int = 30
    channel_window: float = 60.0
    retry_attempts: int = 3
    retry_deadline: float = 300.0
    probe_interval: float = 300.0
    circuit_threshold: int = 5
    circuit_reset: float = 30.0
    attach_full_text: bool = True


@dataclass(slots=True)
class SharedState:
    """What lanes share: the client, the limits (shared with other processes through the
    coordinator), the channel directory, the dead letters, the clock."""

    client: WebhookClient
    renderer: EmbedRenderer
    dead_letters: DeadLetterSink
    stats: DeliveryStats
    bugs: BugReporter
    config: LaneConfig
    coordinator: Coordinator
    channels: ChannelDirectory
    on_result: Callable[[Pending, NotificationResult, str], None]
    clock: Callable[[], float] = time.monotonic
    wall_clock: Callable[[], float] = time.time
    rand: Callable[[], float] = jitter
    paused_until: float = 0.0
    closing: bool = False
    deadline: float | None = None
    store_io: StoreCalls | None = None
    """The store's one thread, for its reads: SQLite may wait for another process's lock or
    a write's transaction, which must never hold the event loop. None: reads run inline."""
    incidents: IncidentConfig = field(default_factory=IncidentConfig)
    """Incident edits and forum channels (:mod:`.incidents`, :mod:`.posting`)."""
    progress: asyncio.Event = field(default_factory=asyncio.Event)
    """Set when a lane or an editor may have become idle (a send handled, a look for kept
    letters finished, a result reported): ``flush()`` waits on it (docs/architecture.md,
    "Fewer moving parts")."""
    on_sending: Callable[[list[Pending], bool], None] | None = None
    """Told before a request carries these (True) and after its answer was handled (False):
    the journal marks what Discord may have (:mod:`.journaling`)."""

    def pause_all(self, seconds: float) -> None:
        """A global 429 or a ban: every lane holds back."""
        self.paused_until = max(self.paused_until, self.clock() + seconds)
