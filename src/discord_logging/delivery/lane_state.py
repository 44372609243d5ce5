"""What lanes hold and share: a pending notification's bookkeeping, the settings, and the
state every lane of one notifier sees (client, the coordinator of the shared limits, the
channel directory, dead letters, clock)."""

from __future__ import annotations

import asyncio
import functools
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from ..coordination import Coordinator
from ..deadletters import DeadLetterSink
from ..notification import Notification, NotificationResult
from ..redaction import redact
from ..render.fitting import RenderedNotification
from ..render.templating import EmbedRenderer
from ..stats import DeliveryStats
from ..transport.channels import ChannelDirectory
from ..transport.client import WebhookClient
from ..transport.outcome import ERROR_TEXT_LIMIT
from .backoff import jitter
from .threads import ExitSafeExecutor

T = TypeVar("T")


@dataclass(slots=True)
class Pending:
    """A notification waiting in a lane, with its delivery bookkeeping."""

    notification: Notification
    attempts: int = 0
    first_attempt: float | None = None
    rendered: RenderedNotification | None = None
    cap: int | None = None  # most notifications it may travel with (halved after a 400)
    no_attachment: bool = False  # resend without the file (after a 413)
    from_dead_letters: bool = False
    uncertain: bool = False  # was cut off in flight once: its message says it may repeat
    settled: bool = False  # delivered or dead-lettered: the lane is done with it
    future: asyncio.Future[NotificationResult] | None = None


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
    reported_errors: set[str] = field(default_factory=set)  # internal error kinds on stderr
    claim_holder: str | None = None
    """Who this process is in the coordinator's dead-letter claims; None when the store's own
    claims suffice (one host: the store directory's lock-protected claims)."""
    store_io: ExitSafeExecutor | None = None
    """One thread for the store's reads: SQLite may wait for another process's lock or a
    writer's transaction, which must never hold the event loop. None: reads run inline."""

    async def off_loop(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` on the store's thread, awaited; inline when there is none, or when it
        refuses work (interpreter shutdown: the record matters more than the loop then)."""
        call = functools.partial(fn, *args)
        if self.store_io is None:
            return call()
        try:
            future = asyncio.get_running_loop().run_in_executor(self.store_io, call)
        except RuntimeError:
            return call()
        return await future

    def pause_all(self, seconds: float) -> None:
        """A global 429 or a ban: every lane holds back."""
        self.paused_until = max(self.paused_until, self.clock() + seconds)

    def report_bug(self, exc: Exception, lane: str) -> str:
        """Count an internal error and describe it (token redacted); one stderr line per
        exception kind, never a traceback per record."""
        self.stats.add("internal_errors")
        kind = type(exc).__name__
        text = redact(f"{kind}: {exc}")[:ERROR_TEXT_LIMIT]
        if kind not in self.reported_errors:
            self.reported_errors.add(kind)
            print(
                f"discord-logging: internal error in lane {lane!r} ({text}); what it held is "
                "kept as dead letters (reason internal_error) and delivery goes on. "
                "This is a bug: please report it with this line.",
                file=sys.stderr,
            )
        return text
