"""One lane per webhook (id, token, thread): its queue, its retries, its circuit breaker.

However many alert types share a webhook URL, they share its lane, so its limits are counted
once. The limits themselves (the channel's hidden window, the webhook's announced bucket, the
global limit and pauses) are the coordinator's, shared with the other lanes of this process and,
with a store directory or Redis, with every process of the fleet: a slot is taken before each
request and given back or completed with the answer. The channel a webhook posts into is asked
of Discord once (a ``GET`` that posts nothing); until it answers, the webhook id stands in.

A lane that is rate limited, failing or disabled only ever waits on its own account (and on
the shared limits), so it never delays another lane. What happens on each kind of response
is decided in one place, :mod:`.answers`.

No exception ends a lane: what it held when something went wrong (a bug, a record nothing can
render) is kept as ``internal_error`` dead letters, reported once per kind on stderr, and the
lane goes on with the next record.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable
from typing import Final

from ..coordination import Grant
from ..deadletters import DeadLetterReason
from ..notification import DeliveryStatus, NotificationResult
from ..render.fitting import RenderedNotification
from ..render.packing import OutgoingMessage, pack
from ..transport.channels import WebhookChannel
from ..transport.client import SendResult
from ..transport.outcome import OutcomeKind
from ..transport.webhook_url import WebhookURL
from .answers import LaneAnswers
from .backlog import next_backlog, plain_prefix, split
from .circuit import CircuitBreaker, CircuitState
from .pending import Pending
from .posting import MessagePoster
from .redelivery import (
    REFILL_INTERVAL,
    RENEW_INTERVAL,
    LaneRedelivery,
    with_repeat_note,
)
from .shared import SharedState
from .threads import run_off_loop

# While closing, a request is started only with at least this much time left before the
# deadline. Below it, a request to Discord (TLS set-up on a fresh connection alone takes a few
# round trips) would likely be cut off: nobody would know whether the message exists. Kept as
# `shutdown` instead, the letter is certainly not in Discord and goes out once next time.
CLOSE_FLOOR: Final = 0.5
RECOVERY_PAUSE: Final = 0.05  # seconds a lane rests after an internal error
CLAIM_LOST_ERROR: Final = (
    "its claim was taken over by another holder (this one was paused past its lease)"
)
CUT_OFF_ERROR: Final = "cut off in flight at the close deadline: Discord may have created it"


class WebhookLane(LaneAnswers):
    """Delivers the notifications routed to one webhook, in order, within Discord's limits."""

    def __init__(
        self,
        name: str,
        url: WebhookURL,
        shared: SharedState,
        *,
        names: tuple[str, ...] = (),
    ) -> None:
        self.name = name
        self.names = names or (name,)
        """Every alert-type name this webhook is configured under."""
        self.url = url
        self.shared = shared
        config = shared.config
        self.queue: deque[Pending] = deque()
        self.in_flight: list[Pending] = []
        self.circuit = CircuitBreaker(config.circuit_threshold, config.circuit_reset)
        self.retry_at = 0.0
        self.disabled_until: float | None = None
        self.sending_until: float | None = None  # when the request in flight times out
        self.redelivery = LaneRedelivery(url.identity, shared)
        self._healthy = True  # did the last request succeed? Redelivery waits for health.
        self._lookup: asyncio.Task[None] | None = None  # asking Discord for the channel
        self._delivered_once = False
        self._wake = asyncio.Event()
        # While closing, the lane stays while this says records may still come to it (the
        # fleet's incident editor posting the first record of an incident).
        self.fed_by: Callable[[], bool] | None = None
        # Incidents (#20): forum posts, which message shows which incident, burst room.
        self.poster = MessagePoster(self)

    # -- intake ------------------------------------------------------------------------------

    @property
    def busy(self) -> bool:
        """Whether anything is queued or being sent, or kept letters of its own overflow
        are still to be taken back while the webhook is healthy."""
        return bool(self.queue or self.in_flight or (self.redelivery.owed and self._healthy))

    def refuses(self, now: float) -> bool:
        """Whether :meth:`submit` keeps any record now (webhook disabled, or circuit open)."""
        disabled = self.disabled_until is not None and now < self.disabled_until
        return disabled or self.circuit.state(now) is CircuitState.OPEN

    def has_room(self, now: float) -> bool:
        """Whether :meth:`submit` would queue a record now (not keep it as a letter)."""
        return not self.refuses(now) and len(self.queue) < self.shared.config.queue_size

    def submit(self, pending: Pending, *, may_queue: bool = True) -> None:
        """Queue ``pending``; what is not queued goes to the dead letters, never away (with
        ``may_queue=False`` as if the queue were full: the fleet's keep, see fleet_incidents)."""
        now = self.shared.clock()
        if self.disabled_until is not None and now < self.disabled_until:
            self._dead(pending, DeadLetterReason.WEBHOOK_DISABLED, None)
        elif self.circuit.state(now) is CircuitState.OPEN:
            self._dead(pending, DeadLetterReason.CIRCUIT_OPEN, None)
        elif not may_queue or len(self.queue) >= self.shared.config.queue_size:
            self._dead(pending, DeadLetterReason.QUEUE_OVERFLOW, None)
            self.redelivery.overflowed(now, pending.notification.id)
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
                        await self._end_lookup()
                        return
                except Exception as exc:  # noqa: BLE001 - nothing ends a lane
                    self._recover(exc)
                    await self._nap(RECOVERY_PAUSE)  # a bug that repeats must not spin the loop
        except asyncio.CancelledError:
            if self._lookup is not None:
                self._lookup.cancel()
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
        carried = self._unsettled_in_flight()
        self.in_flight = []
        if not carried and self.queue:
            carried = [self.queue.popleft()]
        self._kept_as_bug(carried, exc)

    def _kept_as_bug(self, pendings: list[Pending], exc: Exception) -> None:
        error = self.shared.bugs.report(exc, self.name)
        self._dead_all(pendings, DeadLetterReason.INTERNAL_ERROR, None, error)

    async def _step(self) -> bool:
        shared = self.shared
        now = shared.clock()
        self.redelivery.renew(now, self._letters_in_lane())
        if (
            self._lookup is None
            and self._delivered_once  # a webhook that works: never ask about a broken one
            and shared.channels.lookup_due(self.url.webhook_id, now)
            and not self.url.thread_id  # a thread is a channel of its own: nothing to ask
            and not shared.closing  # no new request of any kind at the deadline
        ):
            # Beside the sends, never before them: the first alert does not wait for it.
            self._lookup = asyncio.create_task(self._discover(), name=f"discord-lookup-{self.name}")
        if not self.queue:
            if shared.closing:
                if self.fed_by is not None and self.fed_by():
                    await self._nap(0.01)
                    return True
                return False
            # Records may arrive while the refill awaits the store: their wake-up came before
            # a nap would clear it, so look at the queue again instead of sleeping.
            if not await self._refill(now) and not self.queue:
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
            return await self._wait(now, wait)
        url = self.url
        got = await shared.coordinator.acquire(
            shared.channels.key(url.webhook_id, url.thread_id),
            url.webhook_id,
            backlog=self.poster.demand(self.queue),
        )
        if not isinstance(got, Grant):
            return await self._wait(now, got)
        if await self._fence(shared.clock()):  # after the wait for a slot: a pause may end it
            await shared.coordinator.give_back(got)
            return True
        if not self.circuit.allow(now):  # half-open with a probe already out
            await shared.coordinator.give_back(got)
            await self._nap(0.05)
            return True
        await self._send_next(now, got)
        return True

    def _wait_time(self, now: float) -> float:
        """This lane's own holds: a retry's backoff and this process's pause (the shared
        limits are the coordinator's, asked by :meth:`_step`)."""
        return max(self.shared.paused_until - now, self.retry_at - now)

    async def _wait(self, now: float, wait: float) -> bool:
        """Nap ``wait`` seconds; while closing, a wait past the deadline keeps the queue as
        dead letters instead (False: the lane is done)."""
        shared = self.shared
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

    async def _discover(self) -> None:
        """Ask Discord which channel the webhook posts into (a GET, posts nothing), so its
        requests count in that channel's window, with what it sent so far. Until it answers,
        the webhook id stands in; a failure is asked again later, on a growing interval (a
        401/404 included: the failed sends disable the lane and its probe, not this, decides
        whether it is back; Discord bans IPs that keep making invalid requests)."""
        shared = self.shared
        webhook_id = self.url.webhook_id
        try:
            answer = await shared.client.lookup(self.url)
            if isinstance(answer, WebhookChannel):
                stand_in = shared.channels.key(webhook_id)
                shared.channels.learned(webhook_id, answer.channel_id, answer.guild_id)
                await shared.coordinator.merge_window(stand_in, shared.channels.key(webhook_id))
            else:
                shared.channels.failed(webhook_id, shared.clock())
        except Exception as exc:  # noqa: BLE001 - the stand-in key keeps serving
            shared.channels.failed(webhook_id, shared.clock())
            shared.bugs.report(exc, self.name)
        finally:
            self._lookup = None

    async def _end_lookup(self) -> None:
        lookup = self._lookup
        if lookup is not None:
            lookup.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await lookup

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
                room=self.poster.room(backlog),  # incidents (#20): plain before any digest
            )
        except Exception as exc:
            if len(rendered) == 1:
                raise  # the lone record is the bad one: _recover keeps it
            split(backlog[: len(rendered)])
            self.shared.bugs.report(exc, self.name)
            return None
        return backlog[: len(message.notifications)], message

    async def _send_next(self, now: float, grant: Grant) -> None:
        """Send the next message on ``grant``'s slot, which is completed with the answer or
        given back when no request reached Discord."""
        shared = self.shared
        coordinator = shared.coordinator
        timeout = shared.client.timeout
        prepared = None
        try:
            left = None if shared.deadline is None else shared.deadline - now
            if shared.closing and left is not None and left < CLOSE_FLOOR:
                # No request starts that cannot finish before the deadline.
                self._dead_all(list(self.queue), DeadLetterReason.SHUTDOWN, None)
                self.queue.clear()
            else:
                if shared.closing and left is not None:
                    timeout = min(timeout, left)
                await self.poster.measure_room(grant, self.queue)  # incidents (#20)
                prepared = self._next_message()
        except BaseException:
            await coordinator.give_back(grant)
            raise
        if prepared is None:
            await coordinator.give_back(grant)
            return
        carried, message = prepared
        for _ in carried:
            self.queue.popleft()
        self.in_flight = carried
        for pending in carried:
            if pending.first_attempt is None:
                pending.first_attempt = now
        if shared.on_sending is not None:  # the journal: Discord may get these now
            shared.on_sending(carried, True)
        self.sending_until = now + timeout
        try:
            # Incidents (#20): forum posts and what Discord teaches about them, incident ids.
            result = await self.poster.execute(message, grant, timeout=timeout)
        except asyncio.CancelledError:
            # Cut off at the close deadline: Discord may have counted it.
            with contextlib.suppress(Exception):
                await coordinator.complete(grant, None)
            raise
        self.sending_until = None
        await self._finish_slot(grant, result)
        after = shared.clock()
        shared.stats.answered(result.outcome.status)  # requests by status, for metrics
        for pending in carried:
            pending.attempts += 1
        # Still in flight until handled: if handling fails, _recover keeps what is unsettled.
        await self._handle(carried, message, result.outcome, result.latency, after)
        self.in_flight = []
        shared.progress.set()  # flush() looks again
        if shared.on_sending is not None:  # answered: those not marked uncertain were not posted
            shared.on_sending(carried, False)

    async def _finish_slot(self, grant: Grant, result: SendResult) -> None:
        """A request that never reached Discord (no connection; Cloudflare's ban page) counts
        nowhere; any other is restamped at answer time (Discord counted it somewhere between
        send and answer: the later is safe) with the bucket headers it brought."""
        if not result.sent or result.outcome.kind is OutcomeKind.BANNED:
            await self.shared.coordinator.give_back(grant)
        else:
            await self.shared.coordinator.complete(grant, result.headers)

    # -- dead letters and redelivery ---------------------------------------------------------

    async def _refill(self, now: float) -> bool:
        """Take retryable dead letters back into the queue once the lane is healthy. The store
        claims each letter for this process in the read (one claim system: a letter another
        process holds stays where it is)."""
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
        in_lane = {p.notification.id for p in (*self.queue, *self.in_flight)}
        redelivery = self.redelivery
        limit = redelivery.look(now, healthy)
        owed = frozenset(redelivery.owed)
        found = await run_off_loop(self.shared.store_io, redelivery.read, limit, owed, now)
        letters = redelivery.finish_look(self.shared.clock(), healthy, in_lane, limit, found)
        self.shared.progress.set()  # what is owed may be paid: flush() looks again
        for letter in letters:
            uncertain = letter.reason is DeadLetterReason.UNCERTAIN
            self.queue.append(
                Pending(letter.notification, from_dead_letters=True, uncertain=uncertain)
            )
        return bool(letters)

    async def _fence(self, now: float) -> bool:
        """Fencing (docs/architecture.md, "Holders"): kept letters whose claims were not
        confirmed within the lease less a renewal round (the process was paused) are
        confirmed now; those another holder took over leave the queue unposted (they are its
        to send, with the repeat note). Returns whether any left."""
        redelivery = self.redelivery
        stale = redelivery.unconfirmed(now, self._letters_in_lane())
        if not stale:
            return False
        lost = await run_off_loop(self.shared.store_io, redelivery.confirm, stale)
        redelivery.confirmed.update(dict.fromkeys(stale, now))
        gone = [p for p in self.queue if p.from_dead_letters and p.notification.id in lost]
        for pending in gone:
            self.queue.remove(pending)
            redelivery.confirmed.pop(pending.notification.id, None)
            pending.settled = True
            if pending.future is not None and not pending.future.done():
                pending.future.set_result(
                    NotificationResult(
                        pending.notification.id,
                        DeliveryStatus.FAILED,
                        webhook_id=self.url.webhook_id,
                        error=CLAIM_LOST_ERROR,
                    )
                )
        return bool(gone)

    def _letters_in_lane(self) -> list[str]:
        return [p.notification.id for p in (*self.queue, *self.in_flight) if p.from_dead_letters]
