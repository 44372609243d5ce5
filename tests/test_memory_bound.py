"""The memory bound's arithmetic (docs/architecture.md, "Memory in a flood"), pure."""

from __future__ import annotations

from collections import deque

import pytest

from discord_logging.delivery.memory import RECOUNT_INTERVAL, MemoryBound


class WatchedHandoff(deque[int]):
    """A hand-off that checks, at every record leaving it, what a caller would read."""

    def __init__(self, items: range, bound: MemoryBound, truth: list[int]) -> None:
        super().__init__(items)
        self.bound, self.truth, self.shortfall = bound, truth, 0

    def popleft(self) -> int:
        item = super().popleft()
        self.truth.append(item)  # now held by the worker, still in memory
        # What a caller reads (len(self) + held) against the truth (len(self) + taken).
        self.shortfall = max(self.shortfall, len(self.truth) - self.bound.held)
        return item


def test_a_caller_never_reads_less_than_the_truth_while_a_group_is_taken() -> None:
    """Records leaving the hand-off are counted as held before they leave: the hand-off's
    length plus ``held`` never drops below what is really in memory."""
    bound = MemoryBound(limit=100)
    taken: list[int] = []
    handoff = WatchedHandoff(range(40), bound, taken)
    bound.take(handoff, 25)
    assert len(taken) == 25
    assert handoff.shortfall == 0
    assert len(handoff) + bound.held == 40


def test_room_until_the_limit_then_refused_and_said_once(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A record fits while hand-off + held < limit; the first refusal is said once, on the
    worker's recount, naming the setting."""
    bound = MemoryBound(limit=10)
    bound.handoff = [0, 1, 2]
    bound.recount(6, None)
    assert bound.room()
    bound.handoff = [0, 1, 2, 3]
    assert not bound.room()
    bound.recount(0, None)
    bound.recount(0, None)
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1
    assert "DISCORD_MEMORY_MAX_RECORDS" in lines[0]
    assert "dropped.memory_full" in lines[0]


class Lanes:
    def queue_depth(self) -> int:
        return 7


def test_recount_adds_the_lanes_and_the_store() -> None:
    """The worker's share: records taken and not handed on, the lanes', the store's letters."""
    bound = MemoryBound(limit=30, store_letters=lambda: 5)
    bound.recount(3, Lanes())
    assert bound.held == 15
    assert bound.nap(1.0) == RECOUNT_INTERVAL  # half the bound held: look again soon
    assert bound.nap(None) == RECOUNT_INTERVAL
    bound = MemoryBound(limit=100, store_letters=lambda: 5)
    bound.recount(3, Lanes())
    assert bound.nap(1.0) == 1.0  # far from the bound: a stale count refuses nothing
    assert bound.nap(None) is None
