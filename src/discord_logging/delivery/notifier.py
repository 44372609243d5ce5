"""The async delivery engine: one lane per webhook on one ``httpx.AsyncClient``.

Alert types configured with the same URL share one lane. The limits every lane obeys come
from one coordinator (:mod:`.coordination`): this process only, every process using the same
store directory (``store_dir``), or every process on one Redis (``DISCORD_REDIS_URL``).

Use it directly from async code (``await notifier.send(...)``); :class:`DiscordHandler` runs
one on its worker thread. All methods must be called from the event loop that runs it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import httpx

from ..capture.direct import build_notification
from ..capture.routing import Router
from ..capture.tracing import with_trace_url
from ..coordination import (
    Coordinator,
    require_redis_client,
)
from ..deadletters import DeadLetter, DeadLetterReason, DeadLetterSink, MemoryDeadLetters
from ..errors import ConfigurationError
from ..fork_gate import nothing_parked
from ..notification import DeliveryStatus, Notification, NotificationResult
from ..redaction import redact
from ..render.templating import EmbedRenderer
from ..settings import DiscordSettings, load_settings, webhook_variable
from ..stats import DeliveryStats
from ..transport.channels import ChannelDirectory
from ..transport.client import WebhookClient
from ..transport.environment import require_certificates
from ..transport.headers import BAN_COOLDOWN
from ..wording import plural, write_line
from .backoff import jitter
from .bugs import BugReporter
from .circuit import CircuitState
from .closing import Busy, close_lanes, until_idle
from .editor import IncidentEditor
from .incidents import IncidentConfig
from .lane import WebhookLane
from .pending import Pending
from .resolution import resolve_incident
from .setup import coordinator_for, lanes_by_webhook
from .shared import LaneConfig, SharedState

MUTED = DeliveryStatus.MUTED
ResultListener = Callable[[Notification, NotificationResult, str], None]


class Notifier:
    """Routes notifications to per-webhook lanes and reports every outcome.

    ``settings`` default to the environment; keyword ``overrides`` are setting names
    (see :func:`load_settings`). ``store_dir`` shares the limits with every process using the
    same directory (the handler passes its store's); ``DISCORD_REDIS_URL`` shares them on Redis.
    The remaining keywords tune timing for tests and benchmarks.
    """

    def __init__(
        self,
        settings: DiscordSettings | None = None,
        *,
        dead_letters: DeadLetterSink | None = None,
        stats: DeliveryStats | None = None,
        listeners: Iterable[ResultListener] = (),
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], float] = time.monotonic,
        rand: Callable[[], float] = jitter,
        channel_window: float = 60.0,
        ban_cooldown: float = BAN_COOLDOWN,
        probe_interval: float = 300.0,
        circuit_threshold: int = 5,
        circuit_reset: float = 30.0,
        retry_deadline: float = 300.0,
        store_dir: Path | None = None,
        templates_checked: bool = False,
        **overrides: Any,
    ) -> None:
        if settings is not None and overrides:
            raise ConfigurationError(
                f"unknown engine {plural(len(overrides), 'option')} {sorted(overrides)}: with "
                "settings given, Notifier "
                "takes only dead_letters, stats, listeners, transport, clock, rand, "
                "channel_window, ban_cooldown, probe_interval, circuit_threshold, "
                "circuit_reset, retry_deadline, store_dir, templates_checked"
            )
        self.settings = settings if settings is not None else load_settings(**overrides)
        s = self.settings
        self.urls = s.webhook_urls
        self.router = Router(s.routes, self.urls)
        self.stats = stats if stats is not None else DeliveryStats()
        if dead_letters is None:
            dead_letters = MemoryDeadLetters(
                on_evict=lambda _: self.stats.add("dead_letters_evicted")
            )
        self.dead_letters = dead_letters
        self.renderer = EmbedRenderer(
            app_name=s.app_name,
            templates_dir=s.templates_dir,
            attach_full_text=s.attach_full_text,
            buttons=s.buttons,
            on_buttons_dropped=lambda n: self.stats.add("buttons_dropped", n),
        )
        if not templates_checked:  # the handler checks the user's on the caller's thread
            self.renderer.validate([*self.urls, *s.routes.values(), *s.mentions])
        self.listeners = list(listeners)
        self._client_options: dict[str, Any] = {
            "timeout": s.timeout_seconds,
            "username": s.username,
            "avatar_url": s.avatar_url,
            "mentions": dict(s.mentions),
            "silent": dict(s.silent),
            "ban_cooldown": ban_cooldown,
            "transport": transport,
        }
        self._config = LaneConfig(
            queue_size=s.queue_size,
            rate_limit=s.rate_limit,
            channel_window=channel_window,
            retry_attempts=s.retry_attempts,
            retry_deadline=retry_deadline,
            probe_interval=probe_interval,
            circuit_threshold=circuit_threshold,
            circuit_reset=circuit_reset,
            attach_full_text=s.attach_full_text,
        )
        require_redis_client(s.redis_url)
        require_certificates()  # httpx reads SSL_CERT_FILE on the worker thread, too late to say
        self._store_dir = store_dir
        self._clock = clock
        self._rand = rand
        self._shared: SharedState | None = None
        self._lanes: dict[str, WebhookLane] = {}
        self._unique_lanes: list[WebhookLane] = []
        self._editors: dict[WebhookLane, IncidentEditor] = {}
        self._incidents = IncidentConfig.of(self.settings)
        self._tasks: list[asyncio.Task[None]] = []  # the lanes'
        self._edit_tasks: list[asyncio.Task[None]] = []  # their incidents' editors
        self._closed = False
        self._warned_no_webhook = False
        self.on_sending: Callable[[list[Pending], bool], None] | None = None  # before start()

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """Create the client and start the lanes now, inside the running loop (idempotent).
        Each lane looks for kept retryable letters at once, so what an earlier run kept is
        redelivered without waiting for a new record. Otherwise the first use starts them."""
        self._start()

    def _start(self) -> SharedState:
        """Create the client and lanes inside the running loop (on first use)."""
        if self._shared is None:
            coordinator = self._open_coordinator()
            self.stats.coordination = coordinator
            try:
                client = WebhookClient(**self._client_options)
            except OSError as exc:  # httpx reads SSL_CERT_FILE / SSL_CERT_DIR here
                raise ConfigurationError(
                    f"the HTTP client could not be set up ({type(exc).__name__}: "
                    f"{redact(str(exc))}). Fix: check SSL_CERT_FILE and SSL_CERT_DIR name "
                    "existing certificate files, or unset them"
                ) from None
            self._shared = SharedState(
                client=client,
                renderer=self.renderer,
                dead_letters=self.dead_letters,
                stats=self.stats,
                bugs=BugReporter(self.stats),
                config=self._config,
                coordinator=coordinator,
                channels=ChannelDirectory(),
                on_result=self._report,
                clock=self._clock,
                rand=self._rand,
                store_io=self.dead_letters.store_thread(),
                incidents=self._incidents,
                on_sending=self.on_sending,
            )
            for names, url in lanes_by_webhook(self.urls):
                lane = WebhookLane(names[0], url, self._shared, names=names)
                self._unique_lanes.append(lane)
                for name in names:
                    self._lanes[name] = lane
                self._tasks.append(asyncio.create_task(lane.run(), name=f"discord-lane-{names[0]}"))
                if self._incidents.edits:
                    editor = self._editors[lane] = IncidentEditor(lane)
                    self._edit_tasks.append(
                        asyncio.create_task(editor.run(), name=f"discord-edits-{names[0]}")
                    )
        return self._shared

    def _open_coordinator(self) -> Coordinator:
        # Shared backends keep their own clock (the wall clock, Redis TIME): it is shared with
        # other processes. This process's limits follow the notifier's (injected in tests).
        return coordinator_for(
            self.settings, self._config.channel_window, self._store_dir, self._clock
        )

    @property
    def started(self) -> bool:
        """Whether the lanes have started (what they were given, such as ``on_sending``, is
        fixed from then on)."""
        return self._shared is not None

    @property
    def lanes(self) -> Mapping[str, WebhookLane]:
        """The lanes by webhook (alert type) name, once started; names configured with the same
        URL map to the same lane."""
        return self._lanes

    def park_store(self, timeout: float) -> Callable[[], None]:
        """Hold the store thread outside any call until the returned function is called (see
        :meth:`Worker.park`)."""
        shared = self._shared
        if shared is None or shared.store_io is None:
            return nothing_parked
        return shared.store_io.park(timeout)

    def open_circuits(self) -> int:
        """Webhooks whose circuit breaker is open now (read by the metrics' gauge)."""
        now = self._clock()  # the lanes' clock
        lanes = tuple(self._unique_lanes)
        return sum(1 for lane in lanes if lane.circuit.state(now) is CircuitState.OPEN)

    def queue_depth(self) -> int:
        """Notifications queued or in flight across all lanes (and their incidents' edits)."""
        lanes = sum(len(lane.queue) + len(lane.in_flight) for lane in self._unique_lanes)
        return lanes + sum(editor.held for editor in self._editors.values())

    # -- intake ------------------------------------------------------------------------------

    def submit(self, notification: Notification) -> asyncio.Future[NotificationResult] | None:
        """Queue ``notification`` without waiting. Returns None when no webhook can carry it."""
        return self._submit(notification, want_result=False)

    def _submit(
        self, notification: Notification, *, want_result: bool
    ) -> asyncio.Future[NotificationResult] | None:
        self._start()
        self.stats.add("submitted", alert_type=notification.alert_type)
        notification = with_trace_url(notification, self.settings.trace_url_template)
        carrier = self.router.carrier(notification.alert_type)
        if carrier is None or self._closed:
            reason = "closed" if self._closed else "no_webhook"
            self.stats.dropped(reason, notification.alert_type)
            if reason == "no_webhook":
                self._warn_no_webhook(notification.alert_type)
            result = NotificationResult(notification.id, DeliveryStatus.FAILED, error=reason)
            self._notify(notification, result, carrier or "")
            if not want_result:
                return None
            future: asyncio.Future[NotificationResult] = asyncio.get_running_loop().create_future()
            future.set_result(result)
            return future
        pending = Pending(notification)
        if want_result:
            pending.future = asyncio.get_running_loop().create_future()
        lane = self._lanes[carrier]
        editor = self._editors.get(lane)
        if editor is not None and editor.take(pending):  # an incident's message to edit
            return pending.future
        lane.poster.board.expect(notification)  # its incident's updates wait for its answer
        lane.submit(pending)
        return pending.future

    def show_update(self, notification: Notification) -> None:
        """Show an incident's update that stands for no record (its running count): its
        message is edited when the limits allow; nothing is counted as a record."""
        self._start()
        carrier = self.router.carrier(notification.alert_type)
        editor = self._editors.get(self._lanes[carrier]) if carrier is not None else None
        if editor is not None and not self._closed:
            editor.show(notification)

    def mark_muted(self, notification: Notification, why: str) -> None:
        """A record a mute holds: counted and written to the history as ``muted``, not sent."""
        self.stats.add("muted", alert_type=notification.alert_type)
        carrier = self.router.carrier(notification.alert_type) or ""
        self._notify(notification, NotificationResult(notification.id, MUTED, error=why), carrier)

    def editor_of(self, lane: WebhookLane) -> IncidentEditor | None:
        return self._editors.get(lane)

    async def resolve(self, fingerprint: str, note: str = "", timeout: float = 10.0) -> bool:
        """End incident ``fingerprint`` now (see :mod:`.resolution`); True if its message was
        edited to say resolved. A record of it then opens a new incident."""
        self._start()
        return await resolve_incident(self, fingerprint, note, timeout=timeout)

    def _warn_no_webhook(self, alert_type: str) -> None:
        """The first record dropped for want of a webhook says so, once, naming the fix."""
        if self._warned_no_webhook:
            return
        self._warned_no_webhook = True
        write_line(
            f"discord-logging: a {alert_type!r} record was dropped: no webhook is configured for "
            f"it; set {webhook_variable(alert_type)} or DISCORD_WEBHOOK_GENERAL (the fallback). "
            "Further drops are only counted (stats: dropped.no_webhook).",
        )

    def posts_to(self, destination: str | None) -> bool:
        """Whether one of the configured webhooks is ``destination`` (a webhook identity)."""
        return any(url.identity == destination for url in self.urls.values())

    def lane_for(self, destination: str | None) -> WebhookLane | None:
        """The lane posting to ``destination`` (a webhook identity), once started."""
        for lane in self._unique_lanes:
            if lane.url.identity == destination:
                return lane
        return None

    def find_queued(self, notification_id: str) -> Pending | None:
        """The pending entry of ``notification_id`` if a lane has it queued or in flight."""
        for lane in self._unique_lanes:
            for pending in (*lane.queue, *lane.in_flight):
                if pending.notification.id == notification_id:
                    return pending
        return None

    def redeliver(self, letter: DeadLetter) -> asyncio.Future[NotificationResult]:
        """Queue a dead letter for its webhook again; it leaves the store once delivered.
        A letter a lane already holds (redelivery on its own) is not queued twice."""
        self._start()
        already = self.find_queued(letter.id)
        if already is not None:
            if already.future is None:
                already.future = asyncio.get_running_loop().create_future()
            return already.future
        # Only to the webhook it was written for (rule 2): never to whatever this configuration
        # routes its alert type to.
        lane = self.lane_for(letter.destination)
        future: asyncio.Future[NotificationResult] = asyncio.get_running_loop().create_future()
        if lane is None:
            why = "not_configured" if letter.destination is not None else "destination_unknown"
            future.set_result(NotificationResult(letter.id, DeliveryStatus.FAILED, error=why))
            return future
        uncertain = letter.reason is DeadLetterReason.UNCERTAIN
        lane.submit(
            Pending(letter.notification, from_dead_letters=True, uncertain=uncertain, future=future)
        )
        return future

    async def send_notification(self, notification: Notification) -> NotificationResult:
        """Deliver ``notification`` and wait for its outcome (delivered or dead-lettered)."""
        future = self._submit(notification, want_result=True)
        assert future is not None
        return await future

    async def send(
        self,
        alert_type: str,
        title: str,
        message: str = "",
        *,
        color: int | None = None,
        fields: Mapping[str, object] | None = None,
        exc: BaseException | None = None,
    ) -> NotificationResult:
        """Notify without logging: build a notification and wait for its outcome."""
        return await self.send_notification(
            build_notification(alert_type, title, message, color=color, fields=fields, exc=exc)
        )

    # -- outcomes ----------------------------------------------------------------------------

    def _report(self, pending: Pending, result: NotificationResult, lane: str) -> None:
        notification = pending.notification
        if self._shared is not None:
            self._shared.progress.set()  # flush() looks again
        carrier = self._lanes.get(lane)
        if carrier is not None:
            carrier.poster.outcome(pending, result)  # how large a burst still is
            if result.status is DeliveryStatus.DEAD_LETTERED:
                carrier.poster.board.kept(notification)
            if carrier.poster.board.settled(notification):
                editor = self._editors.get(carrier)
                if editor is not None:  # an update waiting for this post may go now
                    editor.wake()
        # A redelivered dead letter was counted once already, as dead-lettered; it is counted
        # again only as "redelivered", so delivered + aggregated + dead_lettered == emitted.
        if result.status is DeliveryStatus.DELIVERED and not pending.from_dead_letters:
            self.stats.add("delivered", alert_type=notification.alert_type)
            self.stats.delivered_since(notification.created, notification.alert_type)
        if pending.future is not None and not pending.future.done():
            pending.future.set_result(result)
        self._notify(notification, result, lane)

    def _notify(self, notification: Notification, result: NotificationResult, lane: str) -> None:
        for listener in self.listeners:
            try:
                listener(notification, result, lane)
            except Exception:  # noqa: BLE001 - a listener (the store) must not stop delivery
                self.stats.add("store_errors")

    # -- shutdown ----------------------------------------------------------------------------

    async def flush(self, timeout: float | None = None, *, deadline: float | None = None) -> bool:
        """Wait until every lane is empty, and what overflowed a healthy lane's queue was taken
        back from the dead letters and sent. True when, within ``timeout`` seconds, everything
        was delivered or kept in a durable dead-letter store (or by ``deadline``, given as
        ``time.monotonic()``, which wins)."""
        if deadline is None and timeout is not None:
            deadline = time.monotonic() + timeout
        busy: list[Busy] = [*self._unique_lanes, *self._editors.values()]
        if not await until_idle(self._shared, busy, deadline):
            return False
        self.dead_letters.sync()
        return self.dead_letters.durable or len(self.dead_letters) == 0

    async def aclose(self, timeout: float | None = None, *, deadline: float | None = None) -> int:
        """Deliver what can be delivered within ``timeout`` (default: the close_timeout
        setting), hand the rest to the dead letters, close the client (:mod:`.closing`: a
        request in flight is cut off at the deadline and kept). Idempotent.
        ``deadline`` (``time.monotonic()``: the exit's one deadline) wins over ``timeout``.
        Returns how many notifications went to the dead letters because time ran out."""
        if self._closed:
            return 0
        self._closed = True
        if self._shared is None:
            return 0
        before = self.stats.get("dead_lettered")
        await close_lanes(
            self._shared,
            self._unique_lanes,
            self._editors.values(),
            [*self._tasks, *self._edit_tasks],
            deadline
            if deadline is not None
            else time.monotonic() + (self.settings.close_timeout if timeout is None else timeout),
        )
        return self.stats.get("dead_lettered") - before

    async def __aenter__(self) -> Notifier:
        self._start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()
