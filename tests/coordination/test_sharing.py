"""Processes sharing a window never exceed it: properties over interleavings, from tables."""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from discord_logging.coordination import Coordinator, Grant
from discord_logging.coordination.host import HostCoordinator
from discord_logging.coordination.ledger import Limits
from discord_logging.coordination.local import LocalCoordinator
from discord_logging.transport.headers import RateLimitHeaders

LIMITS = Limits(channel_limit=3, channel_window=10.0, global_limit=4, global_window=2.0)
ROOMY = RateLimitHeaders(limit=50, remaining=40, reset_after=1.0)
CHANNELS = ("channel:1", "channel:2")


def worst_span(intervals: list[tuple[float, float]], window: float) -> int:
    """Most requests Discord may have counted in one window, whatever instant between send and
    answer it counted each at: the requests whose [sent, answered] meets (t - window, t]."""
    worst = 0
    for _, answered in intervals:
        # Spans ending at each answer are the tightest: any span holds at most this many.
        start = answered
        count = sum(1 for a, r in intervals if r >= start and a < start + window)
        worst = max(worst, count)
    return worst


@dataclass
class Clock:
    now: float = 0.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Process:
    """A simulated process: its coordinator and the requests it has in flight."""

    coordinator: Coordinator
    in_flight: list[tuple[Grant, float]] = field(default_factory=list)


# acquire (process, channel) | answer (process, index) | give back (process, index) | advance
OPS = st.lists(
    st.one_of(
        st.tuples(st.just("acquire"), st.integers(0, 3), st.integers(0, 1)),
        st.tuples(st.just("answer"), st.integers(0, 3), st.integers(0, 5)),
        st.tuples(st.just("give_back"), st.integers(0, 3), st.integers(0, 5)),
        st.tuples(st.just("advance"), st.sampled_from([0.0, 0.25, 0.5, 1.0, 2.5, 4.0]), st.just(0)),
    ),
    max_size=60,
)


async def run(ops: list[tuple[str, float, int]], processes: list[Process], clock: Clock) -> None:
    sent: dict[str, list[tuple[float, float]]] = {c: [] for c in CHANNELS}
    everything: list[tuple[float, float]] = []

    async def answer(process: Process, index: int) -> None:
        grant, sent_at = process.in_flight.pop(index)
        await process.coordinator.complete(grant, ROOMY)
        sent[grant.channel].append((sent_at, clock.now))
        everything.append((sent_at, clock.now))

    for op, a, b in ops:
        if op == "advance":
            clock.now += a
            # A request is answered (or times out) well within a window.
            for process in processes:
                for index in reversed(range(len(process.in_flight))):
                    if clock.now - process.in_flight[index][1] >= LIMITS.global_window / 2:
                        await answer(process, index)
            continue
        process = processes[int(a) % len(processes)]
        if op == "acquire":
            got = await process.coordinator.acquire(CHANNELS[b], "webhook-1" if b else "webhook-2")
            if isinstance(got, Grant):
                process.in_flight.append((got, clock.now))
            else:
                assert got > 0
        elif process.in_flight:
            index = b % len(process.in_flight)
            if op == "answer":
                await answer(process, index)
            else:
                grant, _ = process.in_flight.pop(index)
                await process.coordinator.give_back(grant)
    for process in processes:
        while process.in_flight:
            await answer(process, 0)
    for intervals in sent.values():
        assert worst_span(intervals, LIMITS.channel_window) <= LIMITS.channel_limit
    assert worst_span(everything, LIMITS.global_window) <= LIMITS.global_limit


@given(OPS)
@settings(max_examples=300, deadline=None)
def test_processes_sharing_one_ledger_never_exceed_the_window(
    ops: list[tuple[str, float, int]],
) -> None:
    """Four senders on one in-process ledger, any interleaving of acquire, answer (restamp),
    give back and time passing: no channel span nor global span holds more than its limit."""
    clock = Clock()
    shared = LocalCoordinator(LIMITS, clock=clock)
    asyncio.run(run(ops, [Process(shared) for _ in range(4)], clock))


@given(OPS)
@settings(max_examples=40, deadline=None)
def test_processes_sharing_one_store_never_exceed_the_window(
    ops: list[tuple[str, float, int]],
) -> None:
    """The same with four one-host coordinators (separate SQLite connections, one file)."""
    clock = Clock()
    with tempfile.TemporaryDirectory() as directory:
        coordinators = [HostCoordinator(Path(directory), LIMITS, clock=clock) for _ in range(4)]
        try:
            asyncio.run(run(ops, [Process(c) for c in coordinators], clock))
        finally:
            for coordinator in coordinators:
                coordinator.close()


def test_worst_span_counts_what_discord_may_have_counted() -> None:
    """The checker itself: a request answered late counts in the window of its answer."""
    assert worst_span([(0, 0), (1, 1), (2, 2)], 10) == 3
    assert worst_span([(0, 0), (10, 10)], 10) == 1
    assert worst_span([(0, 9), (15, 15)], 10) == 2
    assert worst_span([], 10) == 0


def local_view(clock: Callable[[], float]) -> LocalCoordinator:
    return LocalCoordinator(LIMITS, clock=clock)


async def test_without_sharing_processes_would_exceed_it() -> None:
    """The property can fail: four processes each on its own ledger send 4 x 3 in one span."""
    clock = Clock()
    processes = [Process(local_view(clock)) for _ in range(4)]
    intervals = []
    for process in processes:
        for _ in range(3):
            got = await process.coordinator.acquire(CHANNELS[0], f"webhook-{id(process)}")
            assert isinstance(got, Grant)
            await process.coordinator.complete(got, ROOMY)
            intervals.append((clock.now, clock.now))
    assert worst_span(intervals, LIMITS.channel_window) == 12
