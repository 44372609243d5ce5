"""One incident per problem across the fleet: the incident editor's steps when its coordinator
is shared (the store directory's, Redis'), on the worker's loop.

Each step is one transaction on the incident's shared state (:mod:`..coordination.incidents`,
the pure rules) that sets this holder's storm as a contribution and decides: post the
incident's first message (the post claim), wait for another holder's post or edit, edit the
message with the fleet's totals (the edit lease), keep watching until the fleet is quiet, or
drop an update that would show nothing new. docs/architecture.md, "One incident per problem
across the fleet".
"""

from __future__ import annotations

import contextlib
import heapq
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Final

from ..coordination import Grant, IncidentChange, IncidentsUnavailable
from ..coordination import incidents as rules
from ..coordination.incidents import Contribution, Decision, Gone, IncidentState, MessageRef
from ..notification import Notification
from .incidents import Incident, PostedMessage
from .pending import Pending

if TYPE_CHECKING:
    from .editor import IncidentEditor, Update


# Updates one look decides for: a flood of distinct records while the lane's queue is full
# is one statement per this many, and the SQL stays well under SQLite's 999 parameters.
LOOK_BATCH: Final = 200


class FleetIncidents:
    """The shared side of one lane's incidents (see the module)."""

    def __init__(self, editor: IncidentEditor) -> None:
        self.editor = editor
        self.shared = editor.shared
        self.coordinator = editor.shared.coordinator
        config = editor.shared.incidents
        self.interval = config.edit_interval
        self.window = config.window
        self.lease = config.window + config.edit_interval + rules.LEASE_SLACK
        url = editor.lane.url
        self._prefix = f"{url.webhook_id}:{url.thread_id or ''}:"
        self._claims: dict[str, str] = {}  # fingerprint -> shared key: our posts not answered
        self._watches: list[tuple[float, str]] = []  # (when, fingerprint), soonest first
        self._watched: dict[str, Notification] = {}  # fingerprint -> what its watch shows

    @staticmethod
    def applies(editor: IncidentEditor) -> bool:
        """Whether this lane's incidents are the fleet's: a shared coordinator, storms
        aggregated (``DISCORD_AGGREGATE_WINDOW`` > 0: else every record is a message of its
        own), and a channel that is not a forum (a forum's incidents open posts of their own)."""
        shared = editor.shared
        forum = any(name in shared.incidents.forum for name in editor.lane.names)
        aggregated = shared.incidents.window > 0
        return shared.coordinator.shares_incidents and aggregated and not forum

    def holds(self, pending: Pending) -> bool:
        """Whether a record goes through the editor: every record of a problem does, so that
        the first holder posts it and the others show it in that message (not one a caller
        waits for as its own message: ``send``), except while the lane keeps every record
        as a letter at once (docs/architecture.md, "A record the lane cannot take now takes
        no claim")."""
        fingerprint = pending.notification.fingerprint
        if not fingerprint or pending.future is not None or self.shared.closing:
            return False
        return not self.editor.lane.refuses(self.shared.clock())

    # -- one step ----------------------------------------------------------------------------

    async def step(self, key: str, update: Update) -> bool:
        """Handle ``update`` of incident ``key``; False when the backend cannot answer (the
        editor then keeps the incident to this process, as without a fleet)."""
        editor, shared = self.editor, self.shared
        shown = update.show
        step = self._rules_step(update, can_post=editor.lane.has_room(shared.clock()))
        part, first = step.part, step.first
        decide = self._decider(step)
        try:
            plan = None
            if step.records and not step.can_post:  # a keep writes nothing: a look decides it
                plan = await self._look(key, decide)
            if plan is None or plan.action != rules.KEEP:
                plan = await self.coordinator.incident(self._prefix + key, decide)
        except IncidentsUnavailable:  # kept to this process, as without a fleet
            if update.watch:
                self._drop(key)
                return True
            if first:  # posted, as a first record always is in one process
                editor._post_records(key, update)
                return True
            return False
        if plan.action == rules.WATCH and not update.records:
            self._drop(key)
            if not shared.closing:  # looked at again later, outside the line of updates
                self._schedule(key, shown, shared.clock() + max(plan.seconds, 0.01))
        elif plan.action in (rules.WAIT, rules.WATCH):
            update.not_before = shared.clock() + max(plan.seconds, 0.01)  # it stays in line
            await editor._nap(min(plan.seconds, rules.WAIT_STEP))
        elif plan.action == rules.DROP:
            self._drop(key)
        elif plan.action == rules.KEEP:  # kept as letters now, even if room came meanwhile
            del editor._updates[key]
            for pending in update.records:
                editor.lane.submit(pending, may_queue=False)
        elif plan.action == rules.POST:
            await self._post(key, update)
        else:
            own = () if update.watch else tuple(shown.samples) or tuple(part.samples[:1])
            await self._edit(key, update, plan, own)
        last = part.quiet and not plan.quiet  # its storm's last word, the fleet's not yet
        if (first or last) and plan.action in (rules.POST, rules.EDIT):
            self._watch_later(key, shown)
        return True

    def _rules_step(self, update: Update, *, can_post: bool) -> rules.Step:
        """What the rules are told of ``update``: this holder's storm as it shows it (its
        contribution), whether it is the storm's first record, and what it carries."""
        shown = update.show
        mine = self.coordinator.sender
        part = contribution(shown, self.lease, mine)
        first = not shown.is_update and not update.watch
        return rules.Step(
            mine, f"{mine}{part.first_seen:.6f}", part, first, bool(update.records),
            shown.quiet or update.watch, contributes=not update.watch, can_post=can_post,
        )  # fmt: skip

    def _decider(self, step: rules.Step) -> IncidentChange[Decision]:
        edit_for = self.shared.client.timeout + rules.LEASE_SLACK

        def decide(state: IncidentState, now: float, gone: Gone) -> Decision:
            return rules.decide(state, step, now, gone, interval=self.interval, edit_for=edit_for)

        return decide

    async def _look(self, key: str, decide: IncidentChange[Decision]) -> Decision:
        """The decision for incident ``key`` on a look; the same look decides for the other
        updates in line that carry records and whose turn it is (up to LOOK_BATCH), and those
        it keeps are kept now (docs/architecture.md, "A record the lane cannot take now takes
        no claim")."""
        editor = self.editor
        now = self.shared.clock()
        others: list[tuple[str, Update]] = []
        for other, update in editor._updates.items():
            if len(others) >= LOOK_BATCH - 1:
                break
            if other != key and update.records and editor._turn_came(other, update, now):
                others.append((other, update))
        looks = [(self._prefix + key, decide)] + [
            (self._prefix + other, self._decider(self._rules_step(update, can_post=False)))
            for other, update in others
        ]
        plans = await self.coordinator.peek_incidents(looks)
        for (other, update), plan in zip(others, plans[1:], strict=True):
            # (Its records, and any that joined it during the look: the same storm's.)
            if plan.action == rules.KEEP and editor._updates.get(other) is update:
                del editor._updates[other]
                for pending in update.records:
                    editor.lane.submit(pending, may_queue=False)
        return plans[0]

    def _watch_later(self, key: str, shown: Notification) -> None:
        """A storm's first record was shown (should it stay one record, no update of it comes
        again), or its last while others went on: this holder looks once a window is over
        whether the fleet went quiet, and says so if nobody else did (docs/architecture.md)."""
        self._schedule(key, shown, self.shared.clock() + self.window + self.interval)

    def _schedule(self, key: str, shown: Notification, when: float) -> None:
        """Watch incident ``key`` at ``when``: kept apart from the editor's line of updates
        (a flood of lone records makes as many watches: the line is scanned at every step)."""
        if key not in self._watched:
            heapq.heappush(self._watches, (when, key))
        self._watched[key] = shown

    def due_watches(self, now: float) -> None:
        """Put the watches whose time came in the editor's line (unless an update of their
        incident is there already: it says more)."""
        from .editor import Update as Watch

        updates = self.editor._updates
        while self._watches and self._watches[0][0] <= now:
            _, key = heapq.heappop(self._watches)
            shown = self._watched.pop(key, None)
            if shown is not None and key not in updates:
                updates[key] = Watch(shown, watch=True)

    def next_watch(self, now: float) -> float | None:
        """Seconds until the next watch is due, or None."""
        return max(0.0, self._watches[0][0] - now) if self._watches else None

    def forget_watches(self) -> None:
        """At close: watches bring no news, nobody waits for them."""
        self._watches.clear()
        self._watched.clear()

    def _drop(self, key: str) -> None:
        update = self.editor._updates.pop(key, None)
        if update is not None and update.records:  # never: only updates standing for none
            self.editor._post_records(key, update)

    # -- posting -----------------------------------------------------------------------------

    async def _post(self, key: str, update: Update) -> None:
        """This holder posts the incident's message (it has the claim): its records as the lane
        posts any, or an update standing for none on a slot of the lane's."""
        editor = self.editor
        if update.records:
            self._claims[key] = self._prefix + key
            editor.board.watched.add(key)
            editor._post_records(key, update)  # the lane posts them; published once answered
            return
        grant = await editor._slot(None, False)
        if not isinstance(grant, Grant):
            await editor._nap(grant)
            return
        del editor._updates[key]
        editor._open_slot = grant
        await editor._post_anew(update, grant)
        self._claims[key] = self._prefix + key
        editor.board.answered.append(key)
        await self.publish()

    async def publish(self) -> None:
        """Write the reference of each message this holder posted for an incident, once its
        post is answered (None: it failed, and the claim is given back); all of those answered
        since the last look together (docs/architecture.md, "Who posts")."""
        board = self.editor.board
        answered, board.answered = board.answered, []
        mine = self.coordinator.sender
        changes = []
        for key in answered:
            shared_key = self._claims.pop(key, None)
            if shared_key is None:
                continue
            incident = board.get(key)
            ref = None
            if incident is not None and incident.message is not None:
                posted = incident.message
                ref = MessageRef(
                    posted.message_id, posted.thread_id, list(posted.embeds), incident.index,
                    list(posted.attachment_ids),
                )  # fmt: skip
            changes.append((shared_key, _posted(mine, ref)))
        if changes:
            with contextlib.suppress(IncidentsUnavailable):  # else the claims run out (CLAIM_FOR)
                await self.coordinator.incidents(changes)

    async def end(self, key: str) -> Incident | None:
        """End incident ``key`` for the whole fleet (resolved): its message, as last sent, or
        None (no message, or the backend cannot answer)."""
        try:
            ref = await self.coordinator.incident(
                self._prefix + key, lambda state, now, gone: rules.end(state)
            )
        except IncidentsUnavailable:
            return None
        if ref is None:
            return None
        return Incident(
            PostedMessage(ref.id, ref.thread, list(ref.embeds), list(ref.files)), ref.index
        )

    # -- editing -----------------------------------------------------------------------------

    async def _edit(
        self, key: str, update: Update, plan: Decision, own: tuple[tuple[float, str], ...]
    ) -> None:
        """Edit the incident's message with the fleet's totals (this holder has the lease, and
        gives it back with what it showed, or with nothing)."""
        editor = self.editor
        ref = plan.ref
        assert ref is not None
        counted = update.show.with_count(
            plan.total, plan.first_seen, last_seen=plan.last_seen, ongoing=plan.ongoing,
            quiet=plan.quiet,
        )  # fmt: skip
        samples = sorted((*own, *plan.samples))[: rules.SHOWN_SAMPLES] if plan.total > 1 else []
        shown = replace(counted, samples=tuple(samples))
        view = Incident(
            PostedMessage(ref.id, ref.thread, list(ref.embeds), list(ref.files)), ref.index
        )
        grant = await editor._slot(view, bool(update.records))
        mine = self.coordinator.sender
        if not isinstance(grant, Grant):
            await self._finish(
                key, lambda s, now: rules.edited(s, mine, None, shown=0, quiet=False, now=now)
            )
            update.not_before = self.shared.clock() + grant  # it stays in line
            return
        del editor._updates[key]
        editor._in_flight = update
        editor._open_slot = grant
        update.show = shown
        outcome = await editor._edit(key, update, view, grant)
        editor._in_flight = None
        message = view.message
        assert message is not None
        total = shown.count
        if outcome == "edited":
            sent = MessageRef(ref.id, ref.thread, message.embeds, ref.index, message.attachment_ids)
            await self._finish(
                key,
                lambda s, now: rules.edited(s, mine, sent, shown=total, quiet=plan.quiet, now=now),
            )
        elif outcome in ("gone", "moved"):  # deleted, no edits left, or it no longer fits
            await self._finish(key, lambda s, now: rules.forget_message(s, mine, ref.id))
        else:
            await self._finish(
                key, lambda s, now: rules.edited(s, mine, None, shown=0, quiet=False, now=now)
            )

    async def _finish(self, key: str, change: Callable[[IncidentState, float], None]) -> None:
        """Apply ``change`` to incident ``key``'s state (the lease runs out by itself when the
        backend cannot answer)."""

        def apply(state: IncidentState, now: float, gone: Gone) -> None:
            change(state, now)

        with contextlib.suppress(IncidentsUnavailable):
            await self.coordinator.incident(self._prefix + key, apply)


def _posted(mine: str, ref: MessageRef | None) -> IncidentChange[None]:
    """The change that publishes a post's answer: its reference, or None when it failed."""

    def done(state: IncidentState, now: float, gone: Gone) -> None:
        rules.posted(state, mine, ref)

    return done


def contribution(shown: Notification, lease: float, holder: str) -> Contribution:
    """This holder's storm as ``shown`` says it: its count, times, samples, and whether it is
    over (its last update, or its process's)."""
    first = shown.first_seen or shown.created
    last = shown.last_seen or shown.created
    samples = list(shown.samples) or [(shown.created, shown.message)]
    over = shown.is_update and not shown.ongoing
    return Contribution(holder, shown.count, first, last, over, lease, 0.0, 0.0, samples)
