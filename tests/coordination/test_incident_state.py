"""An incident's shared state in the host backend: stored and read back, a holder gone by its
lock, and the rows of incidents that are over deleted (a flood of distinct problems leaves no
row behind for long)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from discord_logging.coordination import incidents as rules
from discord_logging.coordination.host import HostCoordinator
from discord_logging.coordination.incidents import Contribution, IncidentState
from discord_logging.coordination.ledger import Limits
from discord_logging.store._holders import Holder


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def part(holder: str, count: int) -> Contribution:
    return Contribution(holder, count, 1.0, 2.0, False, 10.0, 0.0, 0.0, [(1.0, "db down")])


def rows(store: Path) -> list[str]:
    db = sqlite3.connect(store / "limits" / "limits.sqlite3")
    try:
        return [key for (key,) in db.execute("SELECT key FROM state WHERE key LIKE 'incident:%'")]
    finally:
        db.close()


async def test_contributions_are_stored_set_not_added_and_read_back(tmp_path: Path) -> None:
    """Two holders' storms are summed; a holder saying its count again counts it once."""
    coordinator = HostCoordinator(tmp_path, Limits(), clock=Clock())
    for _ in range(2):  # said twice
        await coordinator.incident(
            "w::f", lambda s, now, gone: rules.contribute(s, "a1", part("a", 3), now)
        )
    await coordinator.incident(
        "w::f", lambda s, now, gone: rules.contribute(s, "b1", part("b", 4), now)
    )
    total = await coordinator.incident("w::f", lambda s, now, gone: s.total())
    samples = await coordinator.incident("w::f", lambda s, now, gone: s.samples())
    await coordinator.aclose()
    assert total == 7
    assert samples == ((1.0, "db down"), (1.0, "db down"))


async def test_a_holder_whose_lock_is_released_is_gone(tmp_path: Path) -> None:
    """A contribution whose holder died (its lock file no longer held) counts as over at once,
    without waiting for its lease."""
    coordinator = HostCoordinator(tmp_path, Limits(), clock=Clock())
    holder = Holder(tmp_path)
    sender = f"h{holder.token}.nonce."
    assert not coordinator.holder_gone(sender)
    holder.release()
    coordinator._alive.clear()  # its last sight (alive) is cached for a second
    assert coordinator.holder_gone(sender)
    assert not coordinator.holder_gone("token-of-another-host.nonce.")  # a lease alone tells
    state = IncidentState()
    rules.contribute(state, "k", part(sender, 1), 1000.0)
    assert state.quiet(1000.0, coordinator.holder_gone)
    await coordinator.aclose()


async def test_incidents_over_are_deleted(tmp_path: Path) -> None:
    """Every few minutes the rows of incidents whose every lease and contribution ran out are
    deleted; an incident still going on stays."""
    clock = Clock()
    coordinator = HostCoordinator(tmp_path, Limits(), clock=clock)
    for key in ("w::old", "w::going"):
        await coordinator.incident(
            key, lambda s, now, gone: rules.contribute(s, "a", part("a", 1), now)
        )
    assert sorted(rows(tmp_path)) == ["incident:w::going", "incident:w::old"]
    clock.now += 20.0  # both leases (10 s) ran out
    await coordinator.incident(
        "w::going", lambda s, now, gone: rules.contribute(s, "a", part("a", 2), now)
    )
    coordinator._next_prune = 0.0  # the next deletion is due
    await coordinator.incident("w::going", lambda s, now, gone: None)
    await coordinator.aclose()
    assert rows(tmp_path) == ["incident:w::going"]


def test_a_row_that_is_not_an_incident_reads_as_none() -> None:
    """A corrupt or planted row counts as no incident rather than stopping delivery."""
    from discord_logging.coordination import ledger

    for text in ('{"p": {"x": [1]}}', "[]", "not json", '{"m": {"no id": 1}}'):
        state = ledger.decode("incident:w::f", text)
        assert isinstance(state, IncidentState)
        assert state.total() == 0
