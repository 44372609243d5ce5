"""What a lane does with each answer Discord gives: decided in one place,
:meth:`LaneAnswers._handle`, with :func:`~discord_logging.transport.outcome.classify`.

Delivered, retried with backoff, waited out (429), cooled off (a Cloudflare ban), split (a
refused message of several), disabled (401/403/404, probed at most once per interval) or kept
as a dead letter: every notification a lane carried ends in exactly one of these.
"""

from __future__ import annotations

from collections import deque
from dataclasses import replace

from ..deadletters import RETRYABLE_REASONS, DeadLetter, DeadLetterReason
from ..notification import DeliveryStatus, NotificationResult
from ..render.packing import OutgoingMessage
from ..transport.outcome import Outcome, OutcomeKind
from ..transport.webhook_url import WebhookURL
from .backlog import split
from .backoff import retry_delay
from .circuit import CircuitBreaker
from .pending import Pending
from .redelivery import LaneRedelivery
from .shared import SharedState


class LaneAnswers:
    """The answer-handling half of :class:`~discord_logging.delivery.lane.WebhookLane`."""

    name: str
    url: WebhookURL
    shared: SharedState
    queue: deque[Pending]
    circuit: CircuitBreaker
    redelivery: LaneRedelivery
    retry_at: float
    disabled_until: float | None
    _healthy: bool
    _delivered_once: bool

    async def _handle(
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
            self._delivered_once = True
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
            if outcome.is_global:  # every lane of every process holds back
                self.shared.pause_all(after)
                await self.shared.coordinator.pause_all(after)
            else:  # the webhook's bucket or its channel's hidden window: this webhook waits
                await self.shared.coordinator.block_webhook(self.url.webhook_id, after)
            self._retry_or_dead(carried, outcome, now, DeadLetterReason.RATE_LIMITED, wait=after)
        elif kind is OutcomeKind.BANNED:
            # Not Discord but Cloudflare: every lane cools off; the records are kept.
            stats.add("banned")
            self.shared.pause_all(outcome.retry_after or 300.0)
            await self.shared.coordinator.pause_all(outcome.retry_after or 300.0)
            for pending in carried:  # Discord never saw these: not an attempt
                pending.attempts -= 1
            self._requeue(carried)
        elif kind is OutcomeKind.RETRY:
            if outcome.may_have_posted:
                self._mark_uncertain(carried)
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

    @staticmethod
    def _mark_uncertain(carried: list[Pending]) -> None:
        """Discord may have posted these though its answer was lost: from now on they carry
        the note that they may repeat an earlier message (rule 3: never twice unmarked)."""
        for pending in carried:
            if not pending.uncertain:
                pending.uncertain = True
                pending.rendered = None  # rendered again, with the note

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

    def _delivered(self, pending: Pending, outcome: Outcome, latency: float) -> None:
        pending.settled = True
        self.redelivery.paid(pending.notification.id)
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
        if pending.uncertain and reason in RETRYABLE_REASONS:
            reason = DeadLetterReason.UNCERTAIN  # kept with its mark: redelivered with the note
        notification = pending.notification
        if notification.ongoing:  # a letter says what was counted, not "still happening"
            notification = replace(notification, ongoing=False)
        letter = DeadLetter(
            notification=notification,
            webhook=self.name,
            reason=reason,
            attempts=pending.attempts,
            error=error or (outcome.error if outcome else None),
            error_code=outcome.error_code if outcome else None,
            http_status=outcome.status if outcome else None,
            dead_at=self.shared.wall_clock(),
            destination=self.url.identity,
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
