"""How a lane posts a message (the worker's loop): into the right forum post or thread, with
what Discord taught it, remembering which message shows which incident, and how much room
the channel has for a backlog's plain messages.

The lane calls :meth:`MessagePoster.execute` instead of posting itself. Two answers are dealt
with here, so that the lane sees the outcome of the message rather than a lesson:

- 400 code 220001: the webhook is a forum's. The lane learns it, and the same message is sent
  again at once as a new post (on a slot of its own): learning, never a poison letter.
- 404 code 10003 to a message sent into an incident's post: the post was deleted. The
  incident forgets it, and the message opens a new post.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Collection, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Final

from ..coordination import Grant
from ..notification import DeliveryStatus, NotificationResult
from ..render.message_limits import EMBEDS_PER_MESSAGE
from ..render.packing import DIGEST_MAX_RECORDS, DigestReason, OutgoingMessage, Room
from ..transport.client import SendResult
from ..transport.outcome import (
    FORUM_NEEDS_THREAD,
    UNKNOWN_CHANNEL,
    Outcome,
    OutcomeKind,
    transport_failure,
)
from .forum import ForumPosts, PostTarget
from .incidents import IncidentBoard
from .pending import Pending

if TYPE_CHECKING:
    from .lane import WebhookLane

# How long an outage is remembered when naming a digest: the retry deadline's 300 s.
OUTAGE_MEMORY: Final = 300.0
NO_SLOT: Final = "no slot to send it again before the deadline; it is retried"


class MessagePoster:
    """Posts a lane's messages; one per lane."""

    def __init__(self, lane: WebhookLane) -> None:
        self.lane = lane
        shared = lane.shared
        self.forum = ForumPosts(lane.names, shared.incidents, lane.url)
        self.board = IncidentBoard()
        self._room = 1  # plain messages the channel takes now (measure_room)
        self._queued = 0  # records queued then
        self._bursting = False  # a burst beyond the limits: digests until the queue empties
        self._limited_at = -math.inf  # last 429 or ban answered to this lane
        self._failed_at = -math.inf  # last 5xx, timeout or connection failure

    # -- packing -----------------------------------------------------------------------------

    def backlog(self, queue: Collection[Pending]) -> int:
        """The records of the lane's backlog: its queue, and what overflowed the queue and is
        still kept (the same burst): the lane's owed ids not back in the queue (counted
        there, not twice)."""
        owed = self.lane.redelivery.owed
        if not owed:
            return len(queue)
        back = sum(1 for p in queue if p.from_dead_letters and p.notification.id in owed)
        return len(queue) + len(owed) - back

    def demand(self, queue: Collection[Pending]) -> int:
        """How many messages the lane still has to send for ``queue``, as it packs them now
        (plain, or digests while it is bursting): what it tells the shared limits with each
        slot it asks for, so that every holder planning plain messages counts it."""
        records = self.backlog(queue)
        if records <= 1:
            return records
        per_message = DIGEST_MAX_RECORDS if self._bursting else self._embeds
        return math.ceil(records / per_message)

    @property
    def _embeds(self) -> int:
        return 1 if self.forum.is_forum else EMBEDS_PER_MESSAGE

    async def measure_room(self, grant: Grant, queue: Collection[Pending]) -> None:
        """How many plain messages the channel takes now, ``grant``'s included: a backlog that
        fits beside what the channel's other holders said they still have to send goes one
        embed per record (asked of the shared limits only for a backlog)."""
        self._room, self._queued = 1, self.backlog(queue)
        if self._queued > 1:
            self._room = 1 + await self.lane.shared.coordinator.plain_room(
                grant.channel, grant.webhook
            )
        else:
            self._bursting = False

    def outcome(self, pending: Pending, result: NotificationResult) -> None:
        """A kept letter taken back and no longer kept (delivered, or settled otherwise) is
        paid: no longer owed, so no longer part of the burst (the lane's next look would
        find it gone; until then it would be counted twice)."""
        if pending.from_dead_letters and result.status is not DeliveryStatus.DEAD_LETTERED:
            self.lane.redelivery.owed.discard(pending.notification.id)

    def room(self, backlog: Sequence[Pending]) -> Room:
        """How the lane's next message may pack ``backlog``: the plain messages the channel
        takes (as measured), one record each in a forum (each opens its own post), and why a
        digest would be needed. A queue that needs more plain messages than that (at 10
        records each, at best) is a burst beyond the limits: it goes in digests until the
        queue is empty (spending the window on plain messages would leave the rest waiting)."""
        embeds = self._embeds
        if math.ceil(self._queued / embeds) > self._room:
            self._bursting = True
        return Room(1 if self._bursting else self._room, embeds, self.digest_reason(backlog))

    def digest_reason(self, backlog: Sequence[Pending]) -> DigestReason:
        """Why a backlog needs a digest: a rate limit met lately, records kept through an
        outage, or else a burst larger than the limits let go one embed per record."""
        shared = self.lane.shared
        now = shared.clock()
        if now - self._limited_at < shared.config.channel_window:
            return DigestReason.RATE_LIMITED
        if now - self._failed_at < OUTAGE_MEMORY and any(
            p.from_dead_letters or p.attempts for p in backlog
        ):
            return DigestReason.OUTAGE
        return DigestReason.BURST

    # -- sending -----------------------------------------------------------------------------

    async def execute(
        self, message: OutgoingMessage, grant: Grant | None, *, timeout: float
    ) -> SendResult:
        """POST ``message`` on ``grant``'s slot, where it belongs; its answer, after any lesson
        (see the module). ``grant`` is completed here when the message must go again."""
        target = self.forum.target(message, self.board)
        result = await self._post(message, target, timeout)
        outcome = result.outcome
        if outcome.refused_for(FORUM_NEEDS_THREAD) and target.post_title is None:
            self.forum.learn()
            self.lane.shared.stats.add("forum_learned")
            result = await self._again(message, grant, timeout, result)
        elif target.thread_id is not None and outcome.refused_for(UNKNOWN_CHANNEL):
            for notification in message.notifications:
                self.board.gone(notification.fingerprint, thread=True)
            result = await self._again(message, grant, timeout, result)
        return result

    async def _post(
        self, message: OutgoingMessage, target: PostTarget, timeout: float
    ) -> SendResult:
        lane = self.lane
        result = await lane.shared.client.execute(
            lane.url,
            message,
            timeout=timeout,
            thread_id=target.thread_id,
            post_title=target.post_title,
            applied_tags=target.applied_tags,
        )
        self._note(result.outcome, lane.shared.clock())
        if result.outcome.kind is OutcomeKind.DELIVERED:
            opened = result.outcome.channel_id if target.post_title else None
            thread = target.thread_id or opened or lane.url.thread_id
            self.board.posted(message, result.outcome, thread)
            if opened:
                lane.shared.stats.add("forum_posts")
        return result

    def _note(self, outcome: Outcome, now: float) -> None:
        if outcome.kind in (OutcomeKind.RATE_LIMITED, OutcomeKind.BANNED):
            self._limited_at = now
        elif outcome.kind is OutcomeKind.RETRY:
            self._failed_at = now

    async def _again(
        self, message: OutgoingMessage, first_grant: Grant | None, timeout: float, first: SendResult
    ) -> SendResult:
        """Send ``message`` once more, on a slot of its own. The first request's slot is
        completed now with its answer's headers (the bucket then knows what is left); the
        caller completes it again with the last answer: it counts once, restamped."""
        coordinator = self.lane.shared.coordinator
        if first_grant is not None:
            await coordinator.complete(first_grant, first.headers)
        grant = await self._slot(timeout)
        if grant is None:
            return replace(first, outcome=transport_failure(NO_SLOT))
        try:
            result = await self._post(message, self.forum.target(message, self.board), timeout)
        except BaseException:
            await coordinator.give_back(grant)
            raise
        if not result.sent or result.outcome.kind is OutcomeKind.BANNED:
            await coordinator.give_back(grant)
        else:
            await coordinator.complete(grant, result.headers)
        return replace(result, sent=True)

    async def _slot(self, timeout: float) -> Grant | None:
        """A slot of the lane's limits, waiting for it up to a channel window (or the close
        deadline); None when none came in time."""
        lane = self.lane
        shared = lane.shared
        key = shared.channels.key(lane.url.webhook_id, lane.url.thread_id)
        limit = shared.clock() + max(timeout, shared.config.channel_window)
        if shared.closing and shared.deadline is not None:
            limit = min(limit, shared.deadline)
        while True:
            got = await shared.coordinator.acquire(key, lane.url.webhook_id)
            if isinstance(got, Grant):
                return got
            if shared.clock() + got > limit:
                return None
            await asyncio.sleep(got)
