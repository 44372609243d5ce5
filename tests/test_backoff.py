"""Exponential backoff with jitter, driven by an injected random source."""

from __future__ import annotations

import os
import random
from collections.abc import Callable

import pytest

from discord_logging.delivery.backoff import (
    BASE_DELAY,
    MAX_DELAY,
    backoff_delay,
    jitter,
    retry_delay,
)


def _zero() -> float:
    return 0.0


def _one() -> float:
    return 1.0


def _half() -> float:
    return 0.5


def _nominal(attempt: int, base: float = BASE_DELAY, cap: float = MAX_DELAY) -> float:
    return min(cap, base * 2 ** (max(attempt, 1) - 1))


# attempt -> d with the defaults (base 1 s, cap 60 s)
DEFAULT_TABLE = [
    pytest.param(1, 1.0, id="attempt-1"),
    pytest.param(2, 2.0, id="attempt-2"),
    pytest.param(3, 4.0, id="attempt-3"),
    pytest.param(4, 8.0, id="attempt-4"),
    pytest.param(5, 16.0, id="attempt-5"),
    pytest.param(6, 32.0, id="attempt-6"),
    pytest.param(7, 60.0, id="attempt-7-capped"),
    pytest.param(8, 60.0, id="attempt-8-capped"),
]


@pytest.mark.parametrize(("attempt", "d"), DEFAULT_TABLE)
def test_backoff_rand_zero_gives_lower_bound(attempt: int, d: float) -> None:
    """rand() = 0 yields d/2, d = min(cap, base * 2**(attempt-1))."""
    assert backoff_delay(attempt, rand=_zero) == pytest.approx(d / 2)


@pytest.mark.parametrize(("attempt", "d"), DEFAULT_TABLE)
def test_backoff_rand_one_gives_upper_bound(attempt: int, d: float) -> None:
    """rand() = 1 yields d itself."""
    assert backoff_delay(attempt, rand=_one) == pytest.approx(d)


@pytest.mark.parametrize(("attempt", "d"), DEFAULT_TABLE)
def test_backoff_rand_half_is_in_the_middle(attempt: int, d: float) -> None:
    """rand() = 0.5 yields 3d/4: the jitter is linear in rand()."""
    assert backoff_delay(attempt, rand=_half) == pytest.approx(0.75 * d)


@pytest.mark.parametrize("attempt", range(1, 9), ids=lambda a: f"attempt-{a}")
@pytest.mark.parametrize("r", [0.0, 0.1, 0.37, 0.5, 0.99, 1.0], ids=lambda r: f"rand-{r}")
def test_backoff_always_within_half_to_full(attempt: int, r: float) -> None:
    """Every jittered delay lies in [d/2, d]."""
    d = _nominal(attempt)
    delay = backoff_delay(attempt, rand=lambda: r)
    assert d / 2 <= delay <= d


@pytest.mark.parametrize("r", [0.0, 0.25, 0.5, 1.0], ids=lambda r: f"rand-{r}")
def test_first_attempt_defaults_between_half_and_one_second(r: float) -> None:
    """With the defaults the first retry waits between 0.5 s and 1.0 s."""
    assert 0.5 <= backoff_delay(1, rand=lambda: r) <= 1.0


@pytest.mark.parametrize(
    ("attempt", "base", "cap", "expected_max"),
    [
        pytest.param(10, 1.0, 60.0, 60.0, id="default-cap"),
        pytest.param(50, 1.0, 60.0, 60.0, id="default-cap-far"),
        pytest.param(3, 1.0, 3.0, 3.0, id="small-cap-hit"),
        pytest.param(2, 1.0, 3.0, 2.0, id="small-cap-not-hit"),
        pytest.param(4, 0.5, 10.0, 4.0, id="half-second-base"),
        pytest.param(6, 0.5, 10.0, 10.0, id="half-second-base-capped"),
        pytest.param(1, 5.0, 2.0, 2.0, id="base-above-cap"),
    ],
)
def test_backoff_cap_is_respected(
    attempt: int, base: float, cap: float, expected_max: float
) -> None:
    """The un-jittered delay never exceeds cap, with custom base and cap."""
    assert backoff_delay(attempt, base=base, cap=cap, rand=_one) == pytest.approx(expected_max)
    assert backoff_delay(attempt, base=base, cap=cap, rand=_zero) == pytest.approx(expected_max / 2)


@pytest.mark.parametrize("attempt", [0, -1, -5, -1000], ids=lambda a: f"attempt{a}")
def test_backoff_non_positive_attempt_is_first(attempt: int) -> None:
    """Attempt 0 or negative is treated as the first retry."""
    for rand in (_zero, _half, _one):
        assert backoff_delay(attempt, rand=rand) == backoff_delay(1, rand=rand)


def test_backoff_is_non_decreasing_in_attempt() -> None:
    """With a fixed rand(), later attempts never wait less."""
    delays = [backoff_delay(a, rand=_half) for a in range(1, 30)]
    assert delays == sorted(delays)


def test_backoff_default_rand_stays_in_bounds() -> None:
    """Without an injected rand() the module's own random source still respects [d/2, d]."""
    for attempt in range(1, 9):
        d = _nominal(attempt)
        assert d / 2 <= backoff_delay(attempt) <= d


@pytest.mark.parametrize("attempt", [1026, 5000], ids=lambda a: f"attempt-{a}")
def test_backoff_huge_attempt_is_capped_not_overflow(attempt: int) -> None:
    """A very long retry streak still waits the cap instead of raising OverflowError."""
    assert backoff_delay(attempt, rand=_one) == MAX_DELAY


@pytest.mark.parametrize(
    ("attempt", "retry_after", "expected"),
    [
        pytest.param(1, 2.5, 2.5, id="retry-after-used"),
        pytest.param(8, 0.3, 0.3, id="retry-after-beats-large-attempt"),
        pytest.param(3, 0.0, 0.0, id="retry-after-zero-still-used"),
        pytest.param(1, 120.0, 120.0, id="retry-after-above-cap-kept"),
    ],
)
def test_retry_delay_uses_retry_after_when_given(
    attempt: int, retry_after: float, expected: float
) -> None:
    """Discord's retry_after, even 0.0, is returned as is and rand() is not consulted."""

    def _must_not_be_called() -> float:
        raise AssertionError("rand() must not be called when retry_after is given")

    assert retry_delay(attempt, retry_after, rand=_must_not_be_called) == expected


@pytest.mark.parametrize("attempt", range(1, 9), ids=lambda a: f"attempt-{a}")
@pytest.mark.parametrize("rand", [_zero, _half, _one], ids=["rand-0", "rand-0.5", "rand-1"])
def test_retry_delay_falls_back_to_backoff(attempt: int, rand: Callable[[], float]) -> None:
    """Without retry_after the delay is backoff_delay with the same attempt and rand()."""
    assert retry_delay(attempt, None, rand=rand) == backoff_delay(attempt, rand=rand)


def test_jitter_leaves_the_global_random_generator_alone() -> None:
    """The library's jitter has its own generator: drawing it does not move the
    application's ``random`` state (a seeded simulation, hypothesis)."""
    random.seed(1234)
    state = random.getstate()
    delays = [backoff_delay(attempt) for attempt in range(1, 50)]
    assert random.getstate() == state
    assert len(set(delays)) > 1  # jittered all the same


@pytest.mark.slow  # a real process
@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_forked_children_do_not_jitter_in_lockstep() -> None:
    """After a fork, parent and child draw different jitter (the generator is reseeded in
    the child), so workers that failed together do not retry together."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: send its first draws, then leave at once
        os.write(write, repr([jitter() for _ in range(4)]).encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        child = pipe.read()
    os.waitpid(pid, 0)
    assert child != repr([jitter() for _ in range(4)])
