"""One lane per webhook: its queue, its limits, its retries, its circuit breaker.

A lane that is rate limited, failing or disabled only ever waits on its own account (and on
the process-wide limits), so it never delays another lane. What happens on each kind of
response is decided in :meth:`WebhookLane._handle`, in one place.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from .backoff import retry_delay
from .batching import DIGEST_MAX_RECORDS, OutgoingMessage, pack
from .circuit import CircuitBreaker, CircuitState
from .client import WebhookClient
from .deadletters import DeadLetter, DeadLetterReason, DeadLetterSink
from .notification import DeliveryStatus, Notification, NotificationResult
from .outcome import Outcome, OutcomeKind
from .ratelimit import SlidingWindow, WebhookBucket
from .rendering import EmbedRenderer, RenderedNotification
from .stats import DeliveryStats
from .webhook import WebhookURL

REFILL_INTERVAL: Final = 30.0  # how often an idle lane looks for dead letters to redeliver


@dataclass(slots=True)
class Pending:
    """A notification waiting in a lane, with its delivery bookkeeping."""

    notification: Notification
    attempts: int = 0
    first_attempt: float | None = None
    rendered: RenderedNotification | None = None
    solo: bool = False  # send alone (after a 400 on a batch, to find the bad one)
    no_attachment: bool = False  # resend without the file (after a 413)
    from_dead_letters: bool = False
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
    """What lanes share: the client, the process-wide limits, the dead letters, the clock."""

    client: WebhookClient
    renderer: EmbedRenderer
    dead_letters: DeadLetterSink
    stats: DeliveryStats
    config: LaneConfig
    global_window: SlidingWindow
    on_result: Callable[[Pending, NotificationResult, str], None]
    clock: Callable[[], float] = time.monotonic
    wall_clock: Callable[[], float] = time.time
    rand: Callable[[], float] = random.random
    paused_until: float = 0.0
    closing: bool = False
    deadline: float | None = None

    def pause_all(self, seconds: float) -> None:
        """A global 429 or a ban: every lane holds back."""
        self.paused_until = max(self.paused_until, self.clock() + seconds)


class WebhookLane:
    """Delivers the notifications routed to one webhook, in order, within Discord's limits."""

    def __init__(self, name: str, url: WebhookURL, shared: SharedState) -> None:
        self.name = name
        self.url = url
        self.shared = shared
        config = shared.config
        self.queue: deque[Pending] = deque()
        self.in_flight: list[Pending] = []
        self.bucket = WebhookBucket()
        self.channel = SlidingWindow(config.rate_limit, config.channel_window)
        self.circuit = CircuitBreaker(config.circuit_threshold, config.circuit_reset)
        self.retry_at = 0.0
        self.disabled_until: float | None = None
        self._next_refill = 0.0
        self._healthy = True  # did the last request succeed? Redelivery waits for health.
        self._wake = asyncio.Event()

    # -- intake ------------------------------------------------------------------------------

    @property
    def busy(self) -> bool:
        """Whether anything is queued or being sent."""
        return bool(self.queue or self.in_flight)

    def submit(self, pending: Pending) -> None:
        """Queue ``pending``; what cannot be queued goes to the dead letters, never away."""
        now = self.shared.clock()
        if self.disabled_until is not None and now < self.disabled_until:
            self._dead(pending, DeadLetterReason.WEBHOOK_DISABLED, None)
        elif self.circuit.state(now) is CircuitState.OPEN:
            self._dead(pending, DeadLetterReason.CIRCUIT_OPEN, None)
        elif len(self.queue) >= self.shared.config.queue_size:
            self._dead(pending, DeadLetterReason.QUEUE_OVERFLOW, None)
        else:
            self.queue.append(pending)
            self._wake.set()

    def wake(self) -> None:
        """Re-evaluate now (new work, shutdown)."""
        self._wake.set()

    # -- the loop ----------------------------------------------------------------------------

    async def run(self) -> None:
        """Deliver until closed; on cancellation everything still held goes to the dead letters."""
        try:
            while await self._step():
                pass
        except asyncio.CancelledError:
            self._dead_all(self.in_flight, DeadLetterReason.SHUTDOWN, None)
            self.in_flight = []
            self._dead_all(list(self.queue), DeadLetterReason.SHUTDOWN, None)
            self.queue.clear()
            raise

    async def _step(self) -> bool:
        shared = self.shared
        now = shared.clock()
        if not self.queue:
            if shared.closing:
                return False
            if not self._refill(now):
                await self._nap(max(0.0, self._next_refill - now) or REFILL_INTERVAL)
            return True
        if self.disabled_until is not None:
            await self._while_disabled(now)
            return True
        if self.circuit.state(now) is CircuitState.OPEN:
            self._dead_all(list(self.queue), DeadLetterReason.CIRCUIT_OPEN, None)
            self.queue.clear()
            return True
        wait = self._wait_time(now)
        if wait > 0:
            if shared.closing and shared.deadline is not None and now + wait > shared.deadline:
                reason = (
                    DeadLetterReason.RATE_LIMITED
                    if shared.paused_until > now
                    else DeadLetterReason.SHUTDOWN
                )
                self._dead_all(list(self.queue), reason, None)
                self.queue.clear()
                return False
            await self._nap(wait)
            return True
        if not self.circuit.allow(now):  # half-open with a probe already out
            await self._nap(0.05)
            return True
        await self._send_next(now)
        return True

    def _wait_time(self, now: float) -> float:
        shared = self.shared
        return max(
            self.bucket.delay(now),
            self.channel.delay(now),
            shared.global_window.delay(now),
            shared.paused_until - now,
            self.retry_at - now,
        )

    async def _nap(self, seconds: float) -> None:
        """Sleep up to ``seconds``; new work or shutdown ends it early."""
        self._wake.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout=max(seconds, 0.001))

    # -- sending -----------------------------------------------------------------------------

    def _render(self, pending: Pending) -> RenderedNotification:
        if pending.rendered is None:
            before = self.shared.renderer.template_errors
            pending.rendered = self.shared.renderer.render(pending.notification)
            if self.shared.renderer.template_errors != before:
                self.shared.stats.add("template_errors")
        return pending.rendered

    def _next_message(self) -> tuple[list[Pending], OutgoingMessage]:
        first = self.queue[0]
        backlog = [first] if first.solo else []
        if not backlog:
            for pending in self.queue:
                if pending.solo or len(backlog) == DIGEST_MAX_RECORDS:
                    break
                backlog.append(pending)
        message = pack(
            [self._render(p) for p in backlog],
            self.shared.renderer.digest_field,
            attach=self.shared.config.attach_full_text and not first.no_attachment,
            now=self.shared.wall_clock(),
        )
        return backlog[: len(message.notifications)], message

    async def _send_next(self, now: float) -> None:
        shared = self.shared
        carried, message = self._next_message()
        for _ in carried:
            self.queue.popleft()
        self.in_flight = carried
        for pending in carried:
            if pending.first_attempt is None:
                pending.first_attempt = now
        shared.global_window.record(now)
        self.channel.record(now)
        result = await shared.client.execute(self.url, message)
        after = shared.clock()
        # Discord counted the request somewhere between send and answer: the later is safe.
        self.channel.restamp_last(after)
        shared.global_window.restamp_last(after)
        self.bucket.update(result.headers, after)
        self.in_flight = []
        for pending in carried:
            pending.attempts += 1
        self._handle(carried, message, result.outcome, result.latency, after)

    def _handle(
        self,
        carried: list[Pending],
        message: OutgoingMessage,
        outcome: Outcome,
        latency: float,
        now: float,
    ) -> None:
        stats = self.shared.stats
        kind = outcome.kind
        self._note_health(kind, now)
        if kind is OutcomeKind.DELIVERED:
            self.circuit.record_success()
            stats.add("messages_sent")
            stats.add("embeds_sent", len(message.embeds))
            if message.digest:
                stats.add("digests_sent")
            for pending in carried:
                self._delivered(pending, outcome, latency)
        elif kind is OutcomeKind.RATE_LIMITED:
            stats.add("rate_limited")
            after = outcome.retry_after or 1.0
            if outcome.is_global:
                self.shared.pause_all(after)
            else:
                self.bucket.block(after, now)
            self._retry_or_dead(carried, outcome, now, DeadLetterReason.RATE_LIMITED)
        elif kind is OutcomeKind.BANNED:
            # Not Discord but Cloudflare: every lane cools off; the records are kept.
            stats.add("banned")
            self.shared.pause_all(outcome.retry_after or 300.0)
            for pending in carried:  # Discord never saw these: not an attempt
                pending.attempts -= 1
            self._requeue(carried)
        elif kind is OutcomeKind.RETRY:
            if self.circuit.record_failure(now):
                self._dead_all(carried, DeadLetterReason.CIRCUIT_OPEN, outcome)
                self._dead_all(list(self.queue), DeadLetterReason.CIRCUIT_OPEN, outcome)
                self.queue.clear()
                return
            kept = self._retry_or_dead(carried, outcome, now, DeadLetterReason.RETRIES_EXHAUSTED)
            if kept:
                attempt = max(p.attempts for p in kept)
                self.retry_at = now + retry_delay(attempt, None, rand=self.shared.rand)
        elif kind is OutcomeKind.TOO_LARGE and message.attachment is not None:
            carried[0].no_attachment = True
            self._requeue(carried)
        elif kind in (OutcomeKind.TOO_LARGE, OutcomeKind.POISON) and len(carried) > 1:
            for pending in carried:  # find the one Discord refuses by sending each alone
                pending.solo = True
            self._requeue(carried)
        elif kind is OutcomeKind.DISABLED:
            self.disabled_until = now + self.shared.config.probe_interval
            self._dead_all(carried, DeadLetterReason.WEBHOOK_DISABLED, outcome)
            self._dead_all(list(self.queue), DeadLetterReason.WEBHOOK_DISABLED, outcome)
            self.queue.clear()
        else:
            self._dead_all(carried, DeadLetterReason.POISON, outcome)

    def _note_health(self, kind: OutcomeKind, now: float) -> None:
        if kind not in (OutcomeKind.DELIVERED, OutcomeKind.RETRY):
            self.circuit.probe_done()
        was_healthy, self._healthy = self._healthy, kind is OutcomeKind.DELIVERED
        if not self._healthy:  # what this failure dead-letters must not come straight back
            self._next_refill = max(self._next_refill, now + REFILL_INTERVAL)
        elif not was_healthy:  # healthy again: redeliver what the outage kept, now
            self._next_refill = 0.0

    def _retry_or_dead(
        self, carried: list[Pending], outcome: Outcome, now: float, reason: DeadLetterReason
    ) -> list[Pending]:
        kept = []
        config = self.shared.config
        for pending in carried:
            started = pending.first_attempt if pending.first_attempt is not None else now
            if pending.attempts >= config.retry_attempts or now - started > config.retry_deadline:
                self._dead(pending, reason, outcome)
            else:
                kept.append(pending)
        if kept:
            self.shared.stats.add("retried", len(kept))
        self._requeue(kept)
        return kept

    def _requeue(self, pendings: list[Pending]) -> None:
        self.queue.extendleft(reversed(pendings))

    # -- disabled webhooks -------------------------------------------------------------------

    async def _while_disabled(self, now: float) -> None:
        until = self.disabled_until or now
        if now >= until and not self.shared.closing:
            # At most one probe per probe_interval: Discord bans IPs that keep sending invalid
            # requests (10,000 401/403/429 in 10 minutes). A GET posts nothing.
            self.shared.stats.add("probes")
            outcome = await self.shared.client.probe(self.url)
            if outcome.kind is OutcomeKind.DELIVERED:
                self.disabled_until = None
                return
            self.disabled_until = self.shared.clock() + self.shared.config.probe_interval
        self._dead_all(list(self.queue), DeadLetterReason.WEBHOOK_DISABLED, None)
        self.queue.clear()

    # -- dead letters and redelivery ---------------------------------------------------------

    def _refill(self, now: float) -> bool:
        """Take retryable dead letters back into the queue once the lane is healthy."""
        if (
            self.shared.closing
            or (self.disabled_until is not None and now < self.disabled_until)
            or self.circuit.state(now) is CircuitState.OPEN
            or now < self._next_refill
        ):
            return False  # a due probe (half-open, disabled) may take one letter below
        self._next_refill = now + REFILL_INTERVAL
        # Healthy: take a good share. Not known to be healthy: one letter, as a probe.
        healthy = (
            self._healthy
            and self.disabled_until is None
            and self.circuit.state(now) is CircuitState.CLOSED
        )
        limit = max(1, self.shared.config.queue_size // 2) if healthy else 1
        try:
            letters = self.shared.dead_letters.retryable(self.name, limit)
        except Exception:  # noqa: BLE001 - a failing store must not stop delivery
            self.shared.stats.add("store_errors")
            return False
        held = {p.notification.id for p in (*self.queue, *self.in_flight)}
        letters = [letter for letter in letters if letter.id not in held]
        if letters and healthy:
            self._next_refill = now  # more may be waiting: look again once these are sent
        for letter in letters:
            self.queue.append(Pending(letter.notification, attempts=0, from_dead_letters=True))
        return bool(letters)

    def _delivered(self, pending: Pending, outcome: Outcome, latency: float) -> None:
        if pending.from_dead_letters:
            self._forget_letter(pending.notification.id)
            self.shared.stats.add("redelivered")
        result = NotificationResult(
            pending.notification.id,
            DeliveryStatus.DELIVERED,
            webhook_id=self.url.webhook_id,
            message_id=outcome.message_id,
            attempts=pending.attempts,
            latency=latency,
            http_status=outcome.status,
        )
        self.shared.on_result(pending, result, self.name)

    def _forget_letter(self, letter_id: str) -> None:
        try:
            self.shared.dead_letters.remove(letter_id)
        except Exception:  # noqa: BLE001
            self.shared.stats.add("store_errors")

    def _dead_all(
        self, pendings: list[Pending], reason: DeadLetterReason, outcome: Outcome | None
    ) -> None:
        for pending in pendings:
            self._dead(pending, reason, outcome)

    def _dead(self, pending: Pending, reason: DeadLetterReason, outcome: Outcome | None) -> None:
        letter = DeadLetter(
            notification=pending.notification,
            webhook=self.name,
            reason=reason,
            attempts=pending.attempts,
            error=outcome.error if outcome else None,
            error_code=outcome.error_code if outcome else None,
            http_status=outcome.status if outcome else None,
            dead_at=self.shared.wall_clock(),
        )
        status = DeliveryStatus.DEAD_LETTERED
        try:
            self.shared.dead_letters.add(letter)
            if not pending.from_dead_letters:  # a failed redelivery is the same letter again
                self.shared.stats.dead_lettered(reason.value, pending.notification.alert_type)
        except Exception:  # noqa: BLE001 - counted as lost, never raised into delivery
            status = DeliveryStatus.FAILED
            self.shared.stats.dropped("dead_letter_write_error", pending.notification.alert_type)
        result = NotificationResult(
            pending.notification.id,
            status,
            webhook_id=self.url.webhook_id,
            attempts=pending.attempts,
            error=letter.error or reason.value,
            error_code=letter.error_code,
            http_status=letter.http_status,
        )
        self.shared.on_result(pending, result, self.name)
