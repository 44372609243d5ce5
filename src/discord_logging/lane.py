"""One lane per webhook: its queue, its limits, its retries, its circuit breaker.

A lane that is rate limited, failing or disabled only ever waits on its own account (and on
the process-wide limits), so it never delays another lane. What happens on each kind of
response is decided in :meth:`WebhookLane._handle`, in one place.

No exception ends a lane: what it held when something went wrong (a bug, a record nothing can
render) is kept as ``internal_error`` dead letters, reported once per kind on stderr, and the
lane goes on with the next record.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from typing import Final

from .backoff import retry_delay
from .batching import OutgoingMessage, pack
from .circuit import CircuitBreaker, CircuitState
from .deadletters import DeadLetter, DeadLetterReason
from .lane_packing import next_backlog, plain_prefix, split
from .lane_redelivery import REFILL_INTERVAL, RENEW_INTERVAL, LaneRedelivery, with_repeat_note
from .lane_state import Pending, SharedState
from .notification import DeliveryStatus, NotificationResult
from .outcome import Outcome, OutcomeKind
from .ratelimit import SlidingWindow, WebhookBucket
from .rendering import RenderedNotification
from .webhook import WebhookURL

# While closing, a request is started only with at least this much time left before the
# deadline. Below it, a request to Discord (TLS set-up on a fresh connection alone takes a few
# round trips) would likely be cut off: nobody would know whether the message exists. Kept as
# `shutdown` instead, the letter is certainly not in Discord and goes out once next time.
CLOSE_FLOOR: Final = 0.5
RECOVERY_PAUSE: Final = 0.05  # seconds a lane rests after an internal error
CUT_OFF_ERROR: Final = "cut off in flight at the close deadline: Discord may have created it"


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
        self.sending_until: float | None = None  # when the request in flight times out
        self.redelivery = LaneRedelivery(name, shared)
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
        """Deliver until closed; on cancellation everything still held goes to the dead letters:
        what was in flight as ``uncertain`` (Discord may have it), the queue as ``shutdown``."""
        try:
            while True:
                try:
                    if not await self._step():
                        return
                except Exception as exc:  # noqa: BLE001 - nothing ends a lane
                    self._recover(exc)
                    await self._nap(RECOVERY_PAUSE)  # a bug that repeats must not spin the loop
        except asyncio.CancelledError:
            cut_off = self._unsettled_in_flight()
            self.in_flight = []
            self._dead_all(cut_off, DeadLetterReason.UNCERTAIN, None, CUT_OFF_ERROR)
            self._dead_all(list(self.queue), DeadLetterReason.SHUTDOWN, None)
            self.queue.clear()
            raise

    def _unsettled_in_flight(self) -> list[Pending]:
        queued = {id(p) for p in self.queue}
        return [p for p in self.in_flight if not p.settled and id(p) not in queued]

    def _recover(self, exc: Exception) -> None:
        """A bug hit the lane: keep what it held (in flight, else the record it was working
        on) as ``internal_error`` letters, and carry on with the rest."""
        held = self._unsettled_in_flight()
        self.in_flight = []
        if not held and self.queue:
            held = [self.queue.popleft()]
        self._kept_as_bug(held, exc)

    def _kept_as_bug(self, pendings: list[Pending], exc: Exception) -> None:
        error = self.shared.report_bug(exc, self.name)
        self._dead_all(pendings, DeadLetterReason.INTERNAL_ERROR, None, error)

    async def _step(self) -> bool:
        shared = self.shared
        now = shared.clock()
        self.redelivery.renew(now, self._held_letters())
        if not self.queue:
            if shared.closing:
                return False
            if not self._refill(now):
                await self._nap(max(0.0, self.redelivery.next_refill - now) or REFILL_INTERVAL)
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
        """Sleep up to ``seconds`` (at most until claims need renewing); new work or shutdown
        ends it early."""
        self._wake.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(
                self._wake.wait(), timeout=min(max(seconds, 0.001), RENEW_INTERVAL)
            )

    # -- sending -----------------------------------------------------------------------------

    def _render(self, pending: Pending) -> RenderedNotification:
        if pending.rendered is None:
            before = self.shared.renderer.template_errors
            rendered = self.shared.renderer.render(pending.notification)
            pending.rendered = with_repeat_note(rendered) if pending.uncertain else rendered
            if self.shared.renderer.template_errors != before:
                self.shared.stats.add("template_errors")
        return pending.rendered

    def _next_message(self) -> tuple[list[Pending], OutgoingMessage] | None:
        """The next message, or None when preparing it failed (the bad record is dead-lettered
        or the backlog split, so the next step tries again)."""
        backlog = next_backlog(self.queue)
        rendered: list[RenderedNotification] = []
        for position, pending in enumerate(backlog):
            try:
                rendered.append(self._render(pending))
            except Exception as exc:  # noqa: BLE001 - one bad record must not stop the others
                del self.queue[position]  # the backlog is the front of the queue
                self._kept_as_bug([pending], exc)
                return None
        if backlog[0].uncertain:  # plain embeds only: a digest would drop the notes
            rendered = plain_prefix(rendered)
        try:
            message = pack(
                rendered,
                self.shared.renderer.digest_field,
                attach=self.shared.config.attach_full_text and not backlog[0].no_attachment,
                now=self.shared.wall_clock(),
            )
        except Exception as exc:
            if len(rendered) == 1:
                raise  # the lone record is the bad one: _recover keeps it
            split(backlog[: len(rendered)])
            self.shared.report_bug(exc, self.name)
            return None
        return backlog[: len(message.notifications)], message

    async def _send_next(self, now: float) -> None:
        shared = self.shared
        timeout = shared.client.timeout
        if shared.closing and shared.deadline is not None:
            # No request starts that cannot finish before the deadline.
            left = shared.deadline - now
            if left < CLOSE_FLOOR:
                self._dead_all(list(self.queue), DeadLetterReason.SHUTDOWN, None)
                self.queue.clear()
                return
            timeout = min(timeout, left)
        prepared = self._next_message()
        if prepared is None:
            return
        carried, message = prepared
        for _ in carried:
            self.queue.popleft()
        self.in_flight = carried
        for pending in carried:
            if pending.first_attempt is None:
                pending.first_attempt = now
        shared.global_window.record(now)
        self.channel.record(now)
        self.sending_until = now + timeout
        result = await shared.client.execute(self.url, message, timeout=timeout)
        self.sending_until = None
        after = shared.clock()
        # Discord counted the request somewhere between send and answer: the later is safe.
        self.channel.restamp_last(after)
        shared.global_window.restamp_last(after)
        self.bucket.update(result.headers, after)
        for pending in carried:
            pending.attempts += 1
        # Still in flight until handled: if handling fails, _recover keeps what is unsettled.
        self._handle(carried, message, result.outcome, result.latency, after)
        self.in_flight = []

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
            self._retry_or_dead(carried, outcome, now, DeadLetterReason.RATE_LIMITED, wait=after)
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
            delay = retry_delay(max(p.attempts for p in carried), None, rand=self.shared.rand)
            reason = DeadLetterReason.RETRIES_EXHAUSTED
            if self._retry_or_dead(carried, outcome, now, reason, wait=delay):
                self.retry_at = now + delay
        elif kind is OutcomeKind.TOO_LARGE and message.attachment is not None:
            carried[0].no_attachment = True
            self._requeue(carried)
        elif kind in (OutcomeKind.TOO_LARGE, OutcomeKind.POISON) and len(carried) > 1:
            split(carried)  # find the one Discord refuses in O(log n) messages
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
        self.redelivery.after_response(self._healthy, was_healthy, now)

    def _retry_or_dead(
        self,
        carried: list[Pending],
        outcome: Outcome,
        now: float,
        reason: DeadLetterReason,
        *,
        wait: float,
    ) -> list[Pending]:
        """Keep for a retry in ``wait`` seconds what has attempts left and would retry within
        the retry deadline (counted from its first attempt); the rest become dead letters."""
        kept = []
        config = self.shared.config
        for pending in carried:
            started = pending.first_attempt if pending.first_attempt is not None else now
            if (
                pending.attempts >= config.retry_attempts
                or now + wait - started > config.retry_deadline
            ):
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
            or now < self.redelivery.next_refill
        ):
            return False  # a due probe (half-open, disabled) may take one letter below
        # Healthy: take a good share. Not known to be healthy: one letter, as a probe.
        healthy = (
            self._healthy
            and self.disabled_until is None
            and self.circuit.state(now) is CircuitState.CLOSED
        )
        held = {p.notification.id for p in (*self.queue, *self.in_flight)}
        letters = self.redelivery.take(now, healthy, held)
        for letter in letters:
            uncertain = letter.reason is DeadLetterReason.UNCERTAIN
            self.queue.append(
                Pending(letter.notification, from_dead_letters=True, uncertain=uncertain)
            )
        return bool(letters)

    def _held_letters(self) -> list[str]:
        return [p.notification.id for p in (*self.queue, *self.in_flight) if p.from_dead_letters]

    def _delivered(self, pending: Pending, outcome: Outcome, latency: float) -> None:
        pending.settled = True
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
        self,
        pendings: list[Pending],
        reason: DeadLetterReason,
        outcome: Outcome | None,
        error: str | None = None,
    ) -> None:
        for pending in pendings:
            self._dead(pending, reason, outcome, error)

    def _dead(
        self,
        pending: Pending,
        reason: DeadLetterReason,
        outcome: Outcome | None,
        error: str | None = None,
    ) -> None:
        pending.settled = True
        letter = DeadLetter(
            notification=pending.notification,
            webhook=self.name,
            reason=reason,
            attempts=pending.attempts,
            error=error or (outcome.error if outcome else None),
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
