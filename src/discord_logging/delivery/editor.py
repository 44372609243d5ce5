"""Keeping each incident's message current: one lane's edits, on a task of their own on the
worker's loop.

An incident's updates come here: its running count, which stands for no record (repeats are
counted by the first post and the last update), and the updates that carry a record (the last
one, when it goes quiet; one released by a flush). Only the newest of an incident's updates is
shown: it edits the incident's message (``PATCH``; an edit notifies nobody) once the posts
showing the incident have their answers.

Edits are requests like any other: each takes a slot of the shared limits, on the webhook's
message routes' own bucket and (conservatively: Discord does not say whether edits count)
in the window of the channel or thread the message is in. An update that stands for no record
leaves a third of that window to new messages. When the message is gone (404 code 10008, or
its post: 10003) the update is posted anew; an update that cannot be shown is posted by the
lane when it carries a record (the lane's retries and dead letters then apply), else dropped
and counted (``updates_dropped``): it stood for nothing not shown already.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from ..coordination import Grant
from ..deadletters import DeadLetterReason
from ..notification import DeliveryStatus, Notification, NotificationResult
from ..render import message_limits as limits
from ..render.packing import file_bytes, pack
from ..transport.client import SendResult
from ..transport.outcome import UNKNOWN_CHANNEL, UNKNOWN_MESSAGE, OutcomeKind
from .backoff import retry_delay
from .fleet_incidents import FleetIncidents
from .incidents import Incident
from .pending import Pending

if TYPE_CHECKING:
    from .lane import WebhookLane

EDIT_BUCKET: Final = "{webhook}:messages"  # the bucket of a webhook's message routes
RESERVE_SHARE: Final = 3  # a running count leaves 1/3 of the channel's window to new messages
CLOSE_FLOOR: Final = 0.5  # as the lane's: no request starts that close would cut off
IDLE_NAP: Final = 1.0
# Discord's 30046: "Maximum number of edits to messages older than 1 hour reached"; the
# incident goes on in a new message, as after a 404 10008.
EDITS_SPENT: Final = 30046
CUT_OFF: Final = "an edit cut off in flight at the close deadline: Discord may have made it"


@dataclass(slots=True)
class Update:
    """The newest state of one incident to show, and the records waiting on it."""

    show: Notification
    records: list[Pending] = field(default_factory=list)
    attempts: int = 0
    not_before: float = 0.0
    watch: bool = False  # the fleet's incident: only look whether it went quiet (no news)


class IncidentEditor:
    """Edits the messages of one lane's incidents."""

    def __init__(self, lane: WebhookLane) -> None:
        self.lane = lane
        self.shared = lane.shared
        self.board = lane.poster.board
        self._updates: OrderedDict[str, Update] = OrderedDict()
        self._in_flight: Update | None = None
        self._open_slot: Grant | None = None  # taken, its request not answered yet
        self._wake = asyncio.Event()
        self.bucket = EDIT_BUCKET.format(webhook=lane.url.webhook_id)
        self.fleet = FleetIncidents(self) if FleetIncidents.applies(self) else None
        if self.fleet is not None:  # it posts incidents' first records, at close too
            lane.fed_by = lambda: self.busy

    @property
    def held(self) -> int:
        """Records waiting here to be shown."""
        return sum(len(update.records) for update in self._updates.values())

    @property
    def busy(self) -> bool:
        """Whether records wait here (or are being shown): ``flush`` waits for them."""
        held = any(update.records for update in self._updates.values())
        return held or (self._in_flight is not None and bool(self._in_flight.records))

    def waiting(self, key: str) -> bool:
        """Whether an update of incident ``key`` waits here or is being shown."""
        flight, update = self._in_flight, self._updates.get(key)
        waits = update is not None and not update.watch  # a watch brings no news
        return waits or (flight is not None and flight.show.fingerprint == key)

    async def end(self, key: str) -> Incident | None:
        """End incident ``key`` for every holder sharing it (resolved): its message as the
        fleet last showed it, or None (no fleet, no message)."""
        return await self.fleet.end(key) if self.fleet is not None else None

    # -- intake ------------------------------------------------------------------------------

    def take(self, pending: Pending) -> bool:
        """Hold ``pending`` (an incident's update carrying a record) to edit its incident's
        message; False when there is no message to edit (the lane posts it instead)."""
        notification = pending.notification
        if self.fleet is not None and self.fleet.holds(pending):
            self._hold(notification, pending)  # the fleet's incident: posted or shown there
            return True
        if not notification.fingerprint or not notification.is_update:
            return False
        incident = self.board.get(notification.fingerprint)
        if incident is None or (incident.message is None and not incident.posting):
            return False
        self._hold(notification, pending)
        return True

    def show(self, notification: Notification) -> None:
        """Show ``notification``, an update standing for no record, when its turn comes."""
        self._hold(notification, None)

    def wake(self) -> None:
        """Look again (an update came, a post of an incident got its answer)."""
        self._wake.set()

    def _hold(self, notification: Notification, pending: Pending | None) -> None:
        # Updates come in order from the one worker thread: the last is the newest.
        update = self._updates.get(notification.fingerprint)
        if update is None:
            update = self._updates[notification.fingerprint] = Update(notification)
        update.show = notification
        if update.watch:  # news: no longer only a look at the end of a window
            update.watch, update.not_before = False, 0.0
        if pending is not None:
            update.records.append(pending)
        self._wake.set()

    # -- the loop ----------------------------------------------------------------------------

    async def run(self) -> None:
        """Edit until closed; on cancellation the records held are kept as dead letters (an
        edit in flight as ``uncertain``: Discord may have made it). No exception ends it: a
        bug keeps the records of the update it hit as ``internal_error`` letters."""
        try:
            while True:
                try:
                    if not await self._step():
                        return
                except Exception as exc:  # noqa: BLE001 - nothing ends the editor
                    held, self._in_flight = self._in_flight, None
                    if self._open_slot is not None:  # no request went out with it
                        await self.shared.coordinator.give_back(self._open_slot)
                        self._open_slot = None
                    error = self.shared.bugs.report(exc, self.lane.name)
                    if held is not None:
                        reason = DeadLetterReason.INTERNAL_ERROR
                        self.lane._dead_all(held.records, reason, None, error)
                    await self._nap(IDLE_NAP)
        except asyncio.CancelledError:
            if self._open_slot is not None:  # cut off in flight: Discord may have counted it
                with contextlib.suppress(Exception):
                    await self.shared.coordinator.complete(self._open_slot, None)
            if self._in_flight is not None:
                cut_off, self._in_flight = self._in_flight.records, None
                self.lane._dead_all(cut_off, DeadLetterReason.UNCERTAIN, None, CUT_OFF)
            self._give_up(DeadLetterReason.SHUTDOWN)
            raise

    async def _step(self) -> bool:
        shared = self.shared
        now = shared.clock()
        if shared.closing and self.fleet is not None:  # watches bring no news: not waited
            self.fleet.forget_watches()
            for key in [k for k, u in self._updates.items() if u.watch]:
                del self._updates[key]
        if shared.closing:
            left = (shared.deadline or now) - now
            if not self._updates or left < CLOSE_FLOOR:
                self._give_up(DeadLetterReason.SHUTDOWN)
                return False
        if self.fleet is not None:
            await self.fleet.publish()
            self.fleet.due_watches(now)
        due = self._due(now)
        if due is None:
            await self._nap(self._next_time(now))
            return True
        key, update, incident = due
        if (
            not update.records
            and not update.watch
            and self.board.shown_by_a_letter(key, update.show, fleet=self.fleet is not None)
        ):
            del self._updates[key]  # a kept letter will show it (A kept update is its storm's word)
            shared.stats.add("updates_dropped")
            return True
        if self.fleet is not None and await self.fleet.step(key, update):
            return True
        message = incident.message if incident is not None else None
        if message is None and update.records:
            self._post_records(key, update)
            return True
        grant = await self._slot(incident, bool(update.records))
        if not isinstance(grant, Grant):
            if shared.closing and shared.deadline is not None and now + grant > shared.deadline:
                self._give_up(DeadLetterReason.SHUTDOWN)
                return False
            await self._nap(grant)
            return True
        del self._updates[key]
        self._in_flight = update  # until its answer is handled (cancelled: cut off in flight)
        self._open_slot = grant
        if incident is not None and incident.message is not None:
            await self._edit(key, update, incident, grant)
        else:
            await self._post_anew(update, grant)
        self._in_flight = None
        shared.progress.set()  # flush() looks again
        return True

    def _due(self, now: float) -> tuple[str, Update, Incident | None] | None:
        """The first update whose turn it is: not backing off, and whose incident has no
        post still waiting for its answer (the update shows on the newest message)."""
        for key, update in self._updates.items():
            if self._turn_came(key, update, now):
                return key, update, self.board.get(key)
        return None

    def _turn_came(self, key: str, update: Update, now: float) -> bool:
        """Whether ``update`` of incident ``key`` may go now: not backing off, and no post of
        its incident still waiting for its answer."""
        incident = self.board.get(key)
        return update.not_before <= now and (incident is None or not incident.posting)

    def _next_time(self, now: float) -> float:
        later = [u.not_before - now for u in self._updates.values() if u.not_before > now]
        watch = self.fleet.next_watch(now) if self.fleet is not None else None
        return min([*later, IDLE_NAP, *([watch] if watch is not None else [])])

    async def _nap(self, seconds: float) -> None:
        self._wake.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout=max(seconds, 0.001))

    async def _slot(self, incident: Incident | None, carries_records: bool) -> Grant | float:
        """A slot for an edit (the message routes' bucket, the window of the channel or thread
        the message is in) or for posting anew (the lane's)."""
        shared, url = self.shared, self.lane.url
        reserve = 0 if carries_records or shared.closing else self._reserve()
        message = incident.message if incident is not None else None
        if message is None:
            key = shared.channels.key(url.webhook_id, url.thread_id)
            return await shared.coordinator.acquire(key, url.webhook_id, reserve=reserve)
        key = shared.channels.key(url.webhook_id, message.thread_id or url.thread_id)
        return await shared.coordinator.acquire(
            key, url.webhook_id, bucket=self.bucket, reserve=reserve
        )

    def _reserve(self) -> int:
        return max(1, self.shared.config.rate_limit // RESERVE_SHARE)

    # -- editing -----------------------------------------------------------------------------

    async def _edit(self, key: str, update: Update, incident: Incident, grant: Grant) -> str:
        """Edit ``incident``'s message to show ``update``: ``edited``, ``gone`` (Discord has
        the message no more, or no edit left for it: posted anew), ``moved`` (it no longer
        fits: posted anew) or ``failed``."""
        shared = self.shared
        message = incident.message
        assert message is not None
        rendered = self.lane._render(Pending(update.show))
        embeds = list(message.embeds)  # one per record of the message, the incident's at index
        embeds[incident.index] = rendered.embed
        if sum(limits.embed_length(e) for e in embeds) > limits.MESSAGE_EMBED_TOTAL:
            # The update no longer fits beside the message's other records: post it anew.
            self._open_slot = None
            await shared.coordinator.give_back(grant)
            self.board.gone(key)
            self._requeue(key, update)
            return "moved"
        body: dict[str, Any] = {"embeds": embeds, "allowed_mentions": {"parse": []}}
        files: list[tuple[str, bytes]] = []
        if not update.show.ongoing and rendered.full_text and shared.config.attach_full_text:
            files = [(rendered.attachment_name, file_bytes(rendered.full_text))]
            # Files listed are kept: a message of several records keeps theirs.
            keep = message.attachment_ids if len(embeds) > 1 else []
            body["attachments"] = [{"id": ident} for ident in keep]
        if shared.on_sending is not None and update.records:  # the journal: Discord may show them
            shared.on_sending(update.records, True)
        result = await shared.client.edit(
            self.lane.url,
            message.message_id,
            body,
            thread_id=message.thread_id,
            files=files,
            timeout=self._timeout(),
        )
        await self._finish_slot(grant, result)
        outcome = result.outcome
        status = "failed"
        if outcome.kind is OutcomeKind.DELIVERED:
            status = "edited"
            shared.stats.add("edits_sent")
            message.embeds = embeds
            if outcome.attachment_ids or files:
                message.attachment_ids = list(outcome.attachment_ids)
            self._delivered(update, message.message_id, result)
        elif any(
            outcome.refused_for(code) for code in (UNKNOWN_MESSAGE, UNKNOWN_CHANNEL, EDITS_SPENT)
        ):
            status = "gone"
            self.board.gone(key, thread=outcome.refused_for(UNKNOWN_CHANNEL))
            self._requeue(key, update)  # posted anew at its next turn
        else:
            if outcome.may_have_posted:  # the edit may show them already (rule 3)
                self.lane._mark_uncertain(update.records)
            await self._failed(key, update, result)
        if shared.on_sending is not None and update.records:  # answered: those left were not
            shared.on_sending(update.records, False)
        return status

    async def _post_anew(self, update: Update, grant: Grant) -> None:
        """Post an update that stands for no record as a message of its own; it becomes the
        incident's message. Its records (none) need no accounting: a failure drops it."""
        lane = self.lane
        rendered = lane._render(Pending(update.show))
        message = pack(
            [rendered],
            self.shared.renderer.digest_field,
            attach=self.shared.config.attach_full_text,
            now=self.shared.wall_clock(),
        )
        result = await lane.poster.execute(message, grant, timeout=self._timeout())
        await self._finish_slot(grant, result)
        if result.outcome.kind is OutcomeKind.DELIVERED:
            self.shared.stats.add("messages_sent")
            self.shared.stats.add("embeds_sent", len(message.embeds))
        else:
            self.shared.stats.add("updates_dropped")

    async def _failed(self, key: str, update: Update, result: SendResult) -> None:
        """An edit Discord did not make: waited out (429, ban) and retried, retried after a
        failure while attempts last; else the records go to the lane, the rest is dropped."""
        shared, outcome = self.shared, result.outcome
        now = shared.clock()
        if outcome.kind in (OutcomeKind.RATE_LIMITED, OutcomeKind.BANNED):
            banned = outcome.kind is OutcomeKind.BANNED
            after = outcome.retry_after or (300.0 if banned else 1.0)
            if outcome.is_global or banned:
                shared.pause_all(after)
                await shared.coordinator.pause_all(after)
            else:
                await shared.coordinator.block_webhook(self.bucket, after)
            update.not_before = now + after
            self._requeue(key, update)
            return
        update.attempts += 1
        if outcome.kind is OutcomeKind.RETRY and update.attempts < shared.config.retry_attempts:
            update.not_before = now + retry_delay(update.attempts, None, rand=shared.rand)
            self._requeue(key, update)
            return
        self.board.gone(key)
        if update.records:
            self._post_records(key, update)
        else:
            shared.stats.add("updates_dropped")

    # -- outcomes ----------------------------------------------------------------------------

    def _requeue(self, key: str, update: Update) -> None:
        """Back in line, merged with any newer update of the incident that came meanwhile."""
        newer = self._updates.pop(key, None)
        if newer is not None:
            update.show = newer.show
            update.records.extend(newer.records)
        self._updates[key] = update
        self._updates.move_to_end(key, last=False)

    def _post_records(self, key: str, update: Update) -> None:
        """No message to edit: the lane posts the records (while closing they are kept)."""
        self._updates.pop(key, None)
        records = update.records  # each posted as it is: its history and letters are its own
        if self.shared.closing and self.fleet is None:  # (the fleet's: the lane waits for them)
            self.lane._dead_all(records, DeadLetterReason.SHUTDOWN, None)
            return
        for pending in records:
            self.board.expect(pending.notification)
            self.lane.submit(pending)

    def _delivered(self, update: Update, message_id: str, result: SendResult) -> None:
        for pending in update.records:
            pending.attempts += 1
            pending.settled = True
            self.shared.on_result(
                pending,
                NotificationResult(
                    pending.notification.id,
                    DeliveryStatus.DELIVERED,
                    webhook_id=self.lane.url.webhook_id,
                    message_id=message_id,
                    attempts=pending.attempts,
                    latency=result.latency,
                    http_status=result.outcome.status,
                ),
                self.lane.name,
            )

    def _give_up(self, reason: DeadLetterReason) -> None:
        """At the close deadline: records held are kept as dead letters; the rest dropped."""
        for update in self._updates.values():
            if update.records:
                self.lane._dead_all(update.records, reason, None)
            else:
                self.shared.stats.add("updates_dropped")
        self._updates.clear()

    async def _finish_slot(self, grant: Grant, result: SendResult) -> None:
        self._open_slot = None
        if not result.sent or result.outcome.kind is OutcomeKind.BANNED:
            await self.shared.coordinator.give_back(grant)
        else:
            await self.shared.coordinator.complete(grant, result.headers)

    def _timeout(self) -> float:
        shared = self.shared
        timeout = shared.client.timeout
        if shared.closing and shared.deadline is not None:
            timeout = min(timeout, max(0.1, shared.deadline - shared.clock()))
        return timeout
