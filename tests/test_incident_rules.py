"""The rules of an incident shared by a fleet (docs/architecture.md, "One incident per problem
across the fleet"), checked by a model of several holders on one shared state.

A hypothesis state machine drives three holders of one problem through the pure rules of
:mod:`discord_logging.coordination.incidents`, each step one transaction on the shared state
(encoded and decoded between steps, as the store directory and Redis keep it). Holders log
records, release running updates, go quiet, step (decide), get their posts and edits
answered (or refused: failed, message deleted), die (their lock released: ``gone`` on one
host; on Redis only their leases tell) and restart with a new identity, while time passes.
After every step:

1. one poster at a time: no two holders post the incident's message on claims both in force;
2. one editor at a time: no two holders edit it on leases both in force;
3. the fleet's total: every edit shows exactly the sum of the contributions, never more
   records than were logged;
4. nothing stuck (``settle``): once every live holder's storm is quiet, the message says
   quiet since, with the fleet's total, whoever died; with nobody alive, the next storm is a
   new incident.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from discord_logging.coordination import incidents as rules
from discord_logging.coordination.incidents import Contribution, Decision, IncidentState

EXAMPLES = int(os.environ.get("DISCORD_LOGGING_MODEL_EXAMPLES", "60"))
STEPS = int(os.environ.get("DISCORD_LOGGING_MODEL_STEPS", "40"))
HOLDERS = 3
WINDOW, INTERVAL, EDIT_FOR = 1.0, 0.2, 15.0
LEASE = WINDOW + INTERVAL + rules.LEASE_SLACK


@dataclass
class Holder:
    """One process's view: its storm, the update it holds, its post or edit in flight."""

    sender: str
    alive: bool = True
    count: int = 0  # records of its storm
    first_seen: float = 0.0
    last_at: float = 0.0
    update: str | None = None  # "first", "running", "quiet", "watch": what its editor holds
    quiet_said: bool = False  # its storm's quiet update was released (once a storm)
    records: bool = False  # the update carries records
    posting: float | None = None  # its claim's end while its post is out
    editing: Decision | None = None
    edit_until: float = 0.0
    logged: int = 0  # records it logged over its lives
    storms: list[int] = field(default_factory=list)


class IncidentRules(RuleBasedStateMachine):
    """Three holders, one shared incident state; every invariant after every step."""

    @initialize(liveness=st.booleans())
    def start(self, liveness: bool) -> None:
        self.liveness = liveness  # one host (locks tell who is gone) or Redis (leases only)
        self.now = 1000.0
        self.state = ""  # the stored JSON
        self.holders = [Holder(f"h{i}.") for i in range(HOLDERS)]
        self.lives = HOLDERS
        self.logged_total = 0
        self.shown: list[Decision] = []  # edits answered, in order
        self.messages = 0

    # -- the shared state: one transaction per change ------------------------------------------

    def gone(self, sender: str) -> bool:
        return self.liveness and not any(h.alive and h.sender == sender for h in self.holders)

    def _transact(self, change: object) -> object:
        assert callable(change)
        state = IncidentState.from_json(json.loads(self.state) if self.state else None)
        result = change(state)
        self.state = json.dumps(state.to_json())
        return result

    def read(self) -> IncidentState:
        return IncidentState.from_json(json.loads(self.state) if self.state else None)

    # -- what holders do -------------------------------------------------------------------

    @rule(i=st.integers(0, HOLDERS - 1), n=st.integers(1, 5))
    def log(self, i: int, n: int) -> None:
        """Holder ``i`` logs the problem ``n`` times (a new storm after a quiet window)."""
        h = self.holders[i]
        if not h.alive:
            return
        if h.count == 0 or self.now - h.last_at >= WINDOW:
            h.count, h.first_seen, h.quiet_said = 0, self.now, False
            h.update, h.records = "first", True  # the new storm's first record, merged
        h.count += n
        h.last_at = self.now
        h.logged += n
        self.logged_total += n
        if h.count > 1 and h.update in (None, "watch"):
            h.update = "running"

    @rule(i=st.integers(0, HOLDERS - 1))
    def goes_quiet(self, i: int) -> None:
        """A window without a repeat: holder ``i``'s storm releases its quiet update."""
        h = self.holders[i]
        if h.alive and h.count > 1 and self.now - h.last_at >= WINDOW and not h.quiet_said:
            h.records = True  # the held repeat goes with it (a lone record has no update)
            h.update, h.quiet_said = "quiet", True

    @rule(i=st.integers(0, HOLDERS - 1), full=st.booleans())
    def step(self, i: int, full: bool = False) -> None:
        """Holder ``i`` steps; ``full``: its lane's queue is full (it cannot post now)."""
        h = self.holders[i]
        if not h.alive or h.update is None or h.posting is not None or h.editing is not None:
            return
        quiet, watch, first = h.update == "quiet", h.update == "watch", h.update == "first"
        part = Contribution(h.sender, h.count, h.first_seen, h.last_at, quiet, LEASE, 0, 0, [])
        key = f"{h.sender}{h.first_seen}"
        step = rules.Step(
            h.sender, key, part, first, h.records, quiet or watch, not watch, can_post=not full
        )
        before = self.read().to_json()

        def decide(state: IncidentState) -> Decision:
            gone = self.gone
            return rules.decide(state, step, self.now, gone, interval=INTERVAL, edit_for=EDIT_FOR)

        decision = self._transact(decide)
        assert isinstance(decision, Decision)
        # After a storm's first record, or its last while the fleet goes on: a watch.
        after = "watch" if first or (quiet and not decision.quiet) else None
        if decision.action == rules.POST:
            h.posting, h.update, h.records = self.now + rules.CLAIM_FOR, after, False
        elif decision.action == rules.EDIT:
            h.editing, h.edit_until = decision, self.now + EDIT_FOR
            h.update, h.records = after, False
            assert decision.total == sum(p.count for p in self.read().parts.values())
        elif decision.action == rules.DROP:
            h.update, h.records = None, False
        elif decision.action == rules.KEEP:  # its records kept as letters: not in the incident
            assert full
            assert h.records
            assert self.read().to_json() == before, "keeping a record changed the state"
            h.update, h.records = None, False

    @rule(i=st.integers(0, HOLDERS - 1), ok=st.booleans())
    def post_answered(self, i: int, ok: bool) -> None:
        h = self.holders[i]
        if not h.alive or h.posting is None:
            return
        h.posting = None
        ref = None
        if ok:
            self.messages += 1
            ref = rules.MessageRef(f"m{self.messages}", None, [], 0, [])
        self._transact(lambda s: rules.posted(s, h.sender, ref))

    @rule(i=st.integers(0, HOLDERS - 1), answer=st.sampled_from(["ok", "ok", "gone", "failed"]))
    def edit_answered(self, i: int, answer: str) -> None:
        h = self.holders[i]
        decision = h.editing
        if not h.alive or decision is None:
            return
        h.editing = None
        ref = decision.ref
        assert ref is not None
        if answer == "ok":
            self.shown.append(decision)
            total, quiet, now = decision.total, decision.quiet, self.now
            self._transact(
                lambda s: rules.edited(s, h.sender, ref, shown=total, quiet=quiet, now=now)
            )
        elif answer == "gone":
            self._transact(lambda s: rules.forget_message(s, h.sender, ref.id))
            h.update = h.update or "running"  # posted anew at its next turn
        else:
            self._transact(
                lambda s: rules.edited(s, h.sender, None, shown=0, quiet=False, now=self.now)
            )

    @rule(i=st.integers(0, HOLDERS - 1))
    def dies(self, i: int) -> None:
        """SIGKILL: its lock is released (gone, on one host); what it held stays in the state."""
        self.holders[i].alive = False

    @precondition(lambda self: any(not h.alive for h in self.holders))
    @rule(i=st.integers(0, HOLDERS - 1))
    def restarts(self, i: int) -> None:
        if not self.holders[i].alive:
            self.lives += 1
            self.holders[i] = Holder(f"h{self.lives}.", logged=self.holders[i].logged)

    @rule(seconds=st.sampled_from([0.05, 0.3, 1.5, 8.0, 40.0]))
    def time_passes(self, seconds: float) -> None:
        self.now += seconds

    @rule()
    def settle(self) -> None:
        """Everyone still alive goes quiet and works until nothing is left: the message then
        says quiet since with the fleet's total (nothing stuck on the dead)."""
        self.now += LEASE + WINDOW
        for _ in range(60):
            for i, h in enumerate(self.holders):
                if h.posting is not None:
                    self.post_answered(i, ok=True)
                if h.editing is not None:
                    self.edit_answered(i, "ok")
                self.goes_quiet(i)
                self.step(i)
            self.now += 0.5
        state = self.read()
        live = {h.sender for h in self.holders if h.alive and h.count}
        mine = live & {p.holder for p in state.parts.values()}
        if state.message is not None and mine and state.total() > 1:
            assert state.closed, "the fleet is quiet but its message does not say so"
            last = self.shown[-1]
            assert last.quiet
            assert last.total == sum(p.count for p in state.parts.values())
        assert not state.open(self.now, self.gone) or live, "a dead fleet's incident stays open"

    # -- invariants --------------------------------------------------------------------------

    @invariant()
    def one_poster_at_a_time(self) -> None:
        posting = [h for h in self.holders if h.alive and h.posting and h.posting > self.now]
        assert len(posting) <= 1, "two holders post the incident's message"

    @invariant()
    def one_editor_at_a_time(self) -> None:
        editing = [h for h in self.holders if h.alive and h.editing and h.edit_until > self.now]
        assert len(editing) <= 1, "two holders edit the incident's message"

    @invariant()
    def shows_the_fleets_total(self) -> None:
        state = self.read()
        assert state.total() <= self.logged_total
        for decision in self.shown:
            assert decision.total <= self.logged_total


IncidentRules.TestCase.settings = settings(
    max_examples=EXAMPLES,
    stateful_step_count=STEPS,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestIncidentRules = IncidentRules.TestCase


def test_a_storm_whose_first_record_was_kept_never_edits_an_older_incidents_message() -> None:
    """Storm 1 was posted (m1) and went quiet (closed). Storm 2's first record is kept (its
    lane's queue full: the keep writes nothing); its running count then opens a new incident
    (a post) instead of editing m1 with storm 1's records counted in (found in review: the
    state still held storm 1, and storm 2's later update joined it)."""
    state, now = IncidentState(), 1000.0

    def decide(key: float, count: int, **step: bool) -> Decision:
        part = Contribution("h0.", count, key, now, step.get("quiet", False), LEASE, 0, 0, [])
        records, first = step.get("records", True), step.get("first", False)
        can_post = step.get("can_post", True)
        shown = rules.Step("h0.", f"h0.{key}", part, first, records, part.quiet, True, can_post)
        return rules.decide(state, shown, now, lambda _: False, interval=INTERVAL, edit_for=1.0)

    assert decide(1000.0, 1, first=True).action == rules.POST
    rules.posted(state, "h0.", rules.MessageRef("m1", None, [], 0, []))
    now += 2 * WINDOW
    quiet = decide(1000.0, 3, quiet=True)
    assert quiet.action == rules.EDIT
    assert quiet.ref is not None
    rules.edited(state, "h0.", quiet.ref, shown=3, quiet=True, now=now)
    assert state.closed
    now += LEASE + WINDOW
    before = state.to_json()
    assert decide(now, 1, first=True, can_post=False).action == rules.KEEP
    assert state.to_json() == before
    running = decide(now, 5, records=False)
    assert running.action == rules.POST, running
