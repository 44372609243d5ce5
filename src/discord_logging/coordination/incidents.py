"""One incident per problem across the fleet: the shared state and its arithmetic (pure,
takes ``now`` and a liveness predicate; docs/architecture.md, "One incident per problem
across the fleet").

The state of one incident lives under ``incident:<webhook>:<thread>:<fingerprint>`` in the
coordinator's backend (the store directory's SQLite, Redis) and changes only inside one
:meth:`~discord_logging.coordination.Coordinator.incident` transaction. It holds the message
showing the incident (its reference), the post claim, the edit lease, and each holder's
storm as a contribution. Every function here changes one :class:`IncidentState` in place.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

CLAIM_FOR: Final = 30.0  # seconds a post claim lasts without its holder's word (a lease)
LEASE_SLACK: Final = 5.0  # added to a contribution's lease: a holder may be slow to say more
SHARED_SAMPLES: Final = 50  # samples one contribution shares (the rest it only counts)
SHOWN_SAMPLES: Final = 1_000  # samples a message's records file shows, over all contributions
SAMPLE_TEXT: Final = 500  # characters kept of each shared sample
WAIT_STEP: Final = 0.1  # how long a holder waits for another's post or edit before looking again

Gone = Callable[[str], bool]  # whether the holder with this sender id is known to be gone

POST: Final = "post"  # this holder posts the incident's message (it took the post claim)
WAIT: Final = "wait"  # another holder posts or edits: look again later
WATCH: Final = "watch"  # this storm is over, the fleet's is not: look again later
DROP: Final = "drop"  # nothing to show that was not shown
EDIT: Final = "edit"  # this holder edits the message (it took the edit lease)
KEEP: Final = "keep"  # this holder's lane cannot post now: its records are kept, no claim taken


@dataclass(slots=True)
class MessageRef:
    """The message that shows the incident, as last sent (what an edit resends)."""

    id: str
    thread: str | None
    embeds: list[dict[str, Any]]
    index: int
    files: list[str]

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "t": self.thread, "e": self.embeds, "i": self.index, "f": self.files}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> MessageRef:
        return cls(
            str(data["id"]),
            None if data.get("t") is None else str(data["t"]),
            [dict(e) for e in data.get("e", [])],
            int(data.get("i", 0)),
            [str(f) for f in data.get("f", [])],
        )


@dataclass(slots=True)
class Contribution:
    """One holder's storm of the incident."""

    holder: str  # the sender id of the holder (its liveness probe)
    count: int
    first_seen: float
    last_seen: float
    quiet: bool  # the storm went quiet (or ended with its process)
    lease: float  # seconds it counts as going on without a word from its holder
    said: float  # when its holder last said it (the backend's clock)
    grew: float  # when its count last grew (the backend's clock)
    samples: list[tuple[float, str]] = field(default_factory=list)

    def to_json(self) -> list[Any]:
        samples = [[t, s] for t, s in self.samples]
        return [
            self.holder, self.count, self.first_seen, self.last_seen, self.quiet, self.lease,
            self.said, self.grew, samples,
        ]  # fmt: skip

    @classmethod
    def from_json(cls, data: list[Any]) -> Contribution:
        holder, count, first, last, quiet, lease, said, grew, samples = data
        kept = [(float(t), str(text)) for t, text in samples]
        return cls(
            str(holder), int(count), float(first), float(last), bool(quiet), float(lease),
            float(said), float(grew), kept,
        )  # fmt: skip

    def over(self, now: float, gone: Gone) -> bool:
        """Whether this storm counts as quiet: said so, its holder is gone, or its lease ran out."""
        return self.quiet or now - self.said > self.lease or gone(self.holder)


@dataclass(slots=True)
class IncidentState:
    """The shared state of one incident (see the module)."""

    message: MessageRef | None = None
    claim: tuple[str, float] | None = None  # (holder, until): posting its first message
    lease: tuple[str, float] | None = None  # (holder, until): editing its message
    parts: dict[str, Contribution] = field(default_factory=dict)
    closed: bool = False  # its quiet update was shown: the next storm is a new message
    shown: int = 0  # the total its message showed last
    edited_at: float = 0.0  # when it was last edited (the backend's clock)
    until: float = 0.0  # past this nothing in it counts any more: a store may delete it

    def to_json(self) -> dict[str, Any]:
        return {
            "m": self.message.to_json() if self.message else None,
            "c": list(self.claim) if self.claim else None,
            "l": list(self.lease) if self.lease else None,
            "p": {key: part.to_json() for key, part in self.parts.items()},
            "x": self.closed,
            "s": self.shown,
            "e": self.edited_at,
            "u": self.until,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> IncidentState:
        if not data:
            return cls()
        message, claim, lease = data.get("m"), data.get("c"), data.get("l")
        return cls(
            MessageRef.from_json(message) if message else None,
            (str(claim[0]), float(claim[1])) if claim else None,
            (str(lease[0]), float(lease[1])) if lease else None,
            {str(k): Contribution.from_json(v) for k, v in data.get("p", {}).items()},
            bool(data.get("x", False)),
            int(data.get("s", 0)),
            float(data.get("e", 0.0)),
            float(data.get("u", 0.0)),
        )

    def mark_until(self) -> None:
        """Set :attr:`until`: the end of the last lease, claim or contribution in it (past it
        the incident is over whoever is alive, and a new storm starts anew)."""
        ends = [part.said + part.lease for part in self.parts.values()]
        ends += [grip[1] for grip in (self.claim, self.lease) if grip is not None]
        self.until = max(ends, default=0.0)

    # -- reading -----------------------------------------------------------------------------

    def total(self) -> int:
        return sum(part.count for part in self.parts.values())

    def first_seen(self) -> float:
        return min((p.first_seen for p in self.parts.values()), default=0.0)

    def last_seen(self) -> float:
        return max((p.last_seen for p in self.parts.values()), default=0.0)

    def samples(self, but: str = "") -> tuple[tuple[float, str], ...]:
        """Every contribution's samples (but those of contribution ``but``: its holder has
        them all), oldest first, at most :data:`SHOWN_SAMPLES`."""
        merged = sorted(s for key, part in self.parts.items() if key != but for s in part.samples)
        return tuple(merged[:SHOWN_SAMPLES])

    def quiet(self, now: float, gone: Gone) -> bool:
        """Whether the whole fleet is quiet: every contribution is over."""
        return all(part.over(now, gone) for part in self.parts.values())

    def open(self, now: float, gone: Gone) -> bool:
        """Whether a new storm joins this incident: not closed, and some storm still goes on
        or the latest grew less than its lease ago (a restart joins the incident it left)."""
        if self.closed or not self.parts:
            return False
        if not self.quiet(now, gone):
            return True
        return any(now - part.grew <= part.lease for part in self.parts.values())

    def _held(self, grip: tuple[str, float] | None, me: str, now: float, gone: Gone) -> bool:
        """Whether ``grip`` (a claim, a lease) is held by another holder still."""
        return grip is not None and grip[0] != me and grip[1] > now and not gone(grip[0])

    def claimed_by_other(self, me: str, now: float, gone: Gone) -> bool:
        return self._held(self.claim, me, now, gone)

    def leased_by_other(self, me: str, now: float, gone: Gone) -> bool:
        return self._held(self.lease, me, now, gone)


# -- changes -----------------------------------------------------------------------------------


def contribute(state: IncidentState, key: str, part: Contribution, now: float) -> None:
    """Set ``key``'s contribution (never add: saying it twice counts once); a closed incident
    whose storm goes on again is open again."""
    old = state.parts.get(key)
    for other_key, other in state.parts.items():  # a holder has one storm going at a time
        if other.holder == part.holder and other_key != key:
            other.quiet = True
    part.said = now
    part.grew = now if old is None or part.count > old.count else old.grew
    part.samples = [(t, s[:SAMPLE_TEXT]) for t, s in part.samples[:SHARED_SAMPLES]]
    state.parts[key] = part
    if state.closed and not part.quiet and old is not None and part.count > old.count:
        state.closed = False


def start_anew(state: IncidentState, key: str, part: Contribution, me: str, now: float) -> None:
    """A new incident: ``me`` posts its first message (the claim); earlier storms are over."""
    state.message = None
    state.lease = None
    state.parts = {}
    state.closed = False
    state.shown = 0
    state.edited_at = 0.0
    contribute(state, key, part, now)
    state.claim = (me, now + CLAIM_FOR)


def take_claim(state: IncidentState, me: str, now: float) -> None:
    state.claim = (me, now + CLAIM_FOR)


def posted(state: IncidentState, me: str, ref: MessageRef | None) -> None:
    """``me``'s post was answered: its message (None: it failed) shows the incident now."""
    if state.claim is not None and state.claim[0] == me:
        state.claim = None
        if ref is not None:
            state.message = ref
            state.shown = max(state.shown, 1)
    elif ref is not None and state.message is None:  # our claim ran out, nobody posted since
        state.message = ref


def take_lease(state: IncidentState, me: str, now: float, seconds: float) -> None:
    state.lease = (me, now + seconds)


def edited(
    state: IncidentState, me: str, ref: MessageRef | None, *, shown: int, quiet: bool, now: float
) -> None:
    """``me``'s edit is over: shown (``ref`` as sent, ``shown`` records, quiet or not), or not
    (``ref`` None). The lease is given back either way."""
    if state.lease is not None and state.lease[0] == me:
        state.lease = None
    if ref is None or state.message is None or state.message.id != ref.id:
        return
    state.message = ref
    state.shown = max(state.shown, shown)
    state.edited_at = now
    if quiet:
        state.closed = True


def forget_message(state: IncidentState, me: str, message_id: str) -> None:
    """Discord has no such message any more (10008) or no edits left for it (30046)."""
    if state.message is not None and state.message.id == message_id:
        state.message = None
    if state.lease is not None and state.lease[0] == me:
        state.lease = None


# -- one holder's step ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Step:
    """What one holder brings to its incident's state: its storm, and what its update is."""

    holder: str  # its sender id
    key: str  # its storm's contribution key
    part: Contribution
    first: bool  # the storm's first record (the incident's first message, if nobody posted)
    records: bool  # it carries records: an edit must show them
    says_quiet: bool  # the storm's quiet update
    contributes: bool = True  # False: a watch, looking whether the fleet went quiet
    can_post: bool = True  # False: its lane cannot take its records now (a full queue)


@dataclass(slots=True)
class Decision:
    """What the step decided, and for an edit what to show."""

    action: str
    seconds: float = 0.0  # WAIT, WATCH: when to look again
    ref: MessageRef | None = None  # EDIT: the message
    total: int = 0
    first_seen: float = 0.0
    last_seen: float = 0.0
    samples: tuple[tuple[float, str], ...] = ()  # EDIT: the others' (the step's holder has its own)
    ongoing: bool = True  # EDIT: some storm of the fleet goes on
    quiet: bool = False  # EDIT: it says "quiet since" (the incident closes once shown)


def decide(
    state: IncidentState, step: Step, now: float, gone: Gone, *, interval: float, edit_for: float
) -> Decision:
    """Set ``step``'s contribution and decide (docs/architecture.md): post (the claim taken),
    keep (where it would post, its lane cannot: nothing written), wait for another holder's
    post or edit, watch until the fleet is quiet, drop an update that shows nothing new, or
    edit (the lease taken for ``edit_for`` seconds). A running update edits at most every
    ``interval`` seconds of the fleet's."""
    mine, part = step.holder, step.part
    if not step.contributes:
        return _watch(state, step, now, gone, edit_for)
    claimed = state.claimed_by_other(mine, now, gone)
    # The storm's first step the state sees: its first record, or a later update when that
    # record was kept (KEEP wrote nothing). Either starts a new incident if none is open, so
    # a new storm never edits the message of one that is over.
    first = step.first or step.key not in state.parts
    anew = first and not state.open(now, gone) and not claimed  # a new incident: post
    if step.records and not step.can_post and (anew or (state.message is None and not claimed)):
        return Decision(KEEP)  # it would post, and cannot: nothing written, nothing claimed
    if anew:
        start_anew(state, step.key, part, mine, now)
        return Decision(POST)
    contribute(state, step.key, part, now)
    if state.message is None:
        if claimed:
            return Decision(WAIT, WAIT_STEP)
        take_claim(state, mine, now)
        return Decision(POST)
    if state.leased_by_other(mine, now, gone):
        return Decision(WAIT, WAIT_STEP)
    fleet_quiet = state.quiet(now, gone)
    total = state.total()
    if not step.records:
        if part.quiet:  # this storm's last update
            if not fleet_quiet:
                return Decision(WATCH, _soonest_over(state, now, gone, part.lease))
            if state.closed:
                return Decision(DROP)
        elif now - state.edited_at < interval:  # a running count
            return Decision(WAIT, state.edited_at + interval - now)
        elif total <= state.shown:
            return Decision(DROP)
    return _edit(
        state, mine, now, gone, edit_for=edit_for, says_quiet=step.says_quiet, own=step.key
    )


def _watch(state: IncidentState, step: Step, now: float, gone: Gone, edit_for: float) -> Decision:
    """A holder whose storm was one record looks whether the fleet went quiet: if so, and the
    message counts more than one record, it says quiet since (a lone record's message stays
    as it was posted)."""
    if state.message is None or state.closed or state.total() <= 1:
        return Decision(DROP)
    if state.leased_by_other(step.holder, now, gone):
        return Decision(WAIT, WAIT_STEP)
    if not state.quiet(now, gone):
        return Decision(WATCH, _soonest_over(state, now, gone, step.part.lease))
    return _edit(state, step.holder, now, gone, edit_for=edit_for, says_quiet=True)


def _soonest_over(state: IncidentState, now: float, gone: Gone, otherwise: float) -> float:
    """Seconds until the first storm still going on may be over by its lease."""
    going = [p.said + p.lease - now for p in state.parts.values() if not p.over(now, gone)]
    return max(WAIT_STEP, min(going, default=otherwise))


def _edit(
    state: IncidentState,
    mine: str,
    now: float,
    gone: Gone,
    *,
    edit_for: float,
    says_quiet: bool,
    own: str = "",
) -> Decision:
    """Take the edit lease and say what the edit shows: the fleet's totals."""
    fleet_quiet = state.quiet(now, gone)
    total = state.total()
    take_lease(state, mine, now, edit_for)
    ref = state.message
    assert ref is not None
    return Decision(
        EDIT,
        ref=MessageRef(ref.id, ref.thread, list(ref.embeds), ref.index, list(ref.files)),
        total=total,
        first_seen=state.first_seen(),
        last_seen=state.last_seen(),
        samples=state.samples(own) if total > 1 else (),
        ongoing=not fleet_quiet,
        quiet=fleet_quiet and says_quiet,
    )


def end(state: IncidentState) -> MessageRef | None:
    """The incident is ended by hand (resolved): closed, its message no longer its; what a
    holder says of it later opens a new one. Returns the message it had."""
    ref, state.message = state.message, None
    state.closed = True
    state.claim = state.lease = None
    return ref
