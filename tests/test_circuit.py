"""Circuit breaker per webhook: closed -> open -> half-open probe -> closed or open again."""

from __future__ import annotations

import pytest

from discord_logging.delivery.circuit import (
    FAILURE_THRESHOLD,
    RESET_TIMEOUT,
    CircuitBreaker,
    CircuitState,
)


def _opened(threshold: int = 3, reset_timeout: float = 10.0, at: float = 100.0) -> CircuitBreaker:
    breaker = CircuitBreaker(threshold, reset_timeout)
    for _ in range(threshold):
        breaker.record_failure(at)
    assert breaker.state(at) is CircuitState.OPEN
    return breaker


def test_defaults() -> None:
    """A default breaker opens after 5 failures and waits 30 s before probing."""
    breaker = CircuitBreaker()
    assert breaker.threshold == FAILURE_THRESHOLD == 5
    assert breaker.reset_timeout == RESET_TIMEOUT == 30.0
    assert breaker.state(0.0) is CircuitState.CLOSED
    assert breaker.allow(0.0) is True
    assert breaker.retry_in(0.0) == 0.0


@pytest.mark.parametrize("threshold", [1, 2, 3, 5, 10], ids=lambda n: f"threshold-{n}")
def test_opens_exactly_at_threshold(threshold: int) -> None:
    """threshold - 1 consecutive failures keep it closed; the threshold-th opens it, once."""
    breaker = CircuitBreaker(threshold, 30.0)
    for i in range(threshold - 1):
        assert breaker.record_failure(float(i)) is False
        assert breaker.state(float(i)) is CircuitState.CLOSED
        assert breaker.allow(float(i)) is True
    assert breaker.record_failure(50.0) is True
    assert breaker.state(50.0) is CircuitState.OPEN
    assert breaker.allow(50.0) is False


@pytest.mark.parametrize(
    ("events", "state"),
    [
        pytest.param("FFS", CircuitState.CLOSED, id="success-resets-after-2"),
        pytest.param("FFSFF", CircuitState.CLOSED, id="reset-then-2-more"),
        pytest.param("FFSFFF", CircuitState.OPEN, id="reset-then-3-opens"),
        pytest.param("FSFSFSFS", CircuitState.CLOSED, id="alternating-never-opens"),
        pytest.param("FFF", CircuitState.OPEN, id="three-in-a-row"),
        pytest.param("SSSFF", CircuitState.CLOSED, id="successes-do-not-bank"),
    ],
)
def test_only_consecutive_failures_count(events: str, state: CircuitState) -> None:
    """A success resets the failure count: only an unbroken run of failures opens it."""
    breaker = CircuitBreaker(3, 10.0)
    for event in events:
        if event == "F":
            breaker.record_failure(0.0)
        else:
            breaker.record_success()
    assert breaker.state(0.0) is state


def test_success_resets_failure_counter() -> None:
    """record_success sets failures back to 0 and reports no state change when closed."""
    breaker = CircuitBreaker(3, 10.0)
    breaker.record_failure(0.0)
    breaker.record_failure(0.0)
    assert breaker.failures == 2
    assert breaker.record_success() is False
    assert breaker.failures == 0


@pytest.mark.parametrize(
    ("now", "state", "allowed", "retry_in"),
    [
        pytest.param(100.0, CircuitState.OPEN, False, 10.0, id="just-opened"),
        pytest.param(101.0, CircuitState.OPEN, False, 9.0, id="after-1s"),
        pytest.param(109.5, CircuitState.OPEN, False, 0.5, id="after-9.5s"),
        pytest.param(110.0, CircuitState.HALF_OPEN, True, 0.0, id="at-timeout"),
        pytest.param(500.0, CircuitState.HALF_OPEN, True, 0.0, id="long-after"),
    ],
)
def test_open_refuses_until_timeout(
    now: float, state: CircuitState, allowed: bool, retry_in: float
) -> None:
    """Open refuses every request until reset_timeout; retry_in counts down to 0."""
    breaker = _opened()
    assert breaker.state(now) is state
    assert breaker.retry_in(now) == pytest.approx(retry_in)
    assert breaker.allow(now) is allowed


def test_open_refuses_repeatedly() -> None:
    """While open, allow() keeps saying no (it does not consume anything)."""
    breaker = _opened()
    assert [breaker.allow(100.0 + t) for t in range(10)] == [False] * 10


def test_half_open_allows_exactly_one_probe() -> None:
    """After the timeout one probe goes; others are refused until its result is recorded."""
    breaker = _opened()
    assert breaker.allow(110.0) is True
    assert breaker.state(110.0) is CircuitState.HALF_OPEN
    assert [breaker.allow(110.0 + t) for t in range(5)] == [False] * 5
    assert breaker.allow(1000.0) is False  # a lost probe keeps it waiting for its result


def test_probe_success_closes() -> None:
    """A successful probe closes the circuit; record_success returns True exactly once."""
    breaker = _opened()
    assert breaker.allow(110.0) is True
    assert breaker.record_success() is True
    assert breaker.record_success() is False
    assert breaker.state(110.0) is CircuitState.CLOSED
    assert breaker.failures == 0
    assert breaker.retry_in(110.0) == 0.0
    assert [breaker.allow(110.0) for _ in range(5)] == [True] * 5


def test_probe_success_then_needs_full_threshold_again() -> None:
    """After closing, it takes threshold fresh failures to open again."""
    breaker = _opened(threshold=3)
    assert breaker.allow(110.0)
    breaker.record_success()
    assert breaker.record_failure(111.0) is False
    assert breaker.record_failure(112.0) is False
    assert breaker.state(112.0) is CircuitState.CLOSED
    assert breaker.record_failure(113.0) is True
    assert breaker.state(113.0) is CircuitState.OPEN
    assert breaker.retry_in(113.0) == pytest.approx(10.0)


@pytest.mark.parametrize(
    ("now", "state", "retry_in"),
    [
        pytest.param(112.0, CircuitState.OPEN, 10.0, id="right-after-failed-probe"),
        pytest.param(121.9, CircuitState.OPEN, 0.1, id="just-before-new-timeout"),
        pytest.param(122.0, CircuitState.HALF_OPEN, 0.0, id="at-new-timeout"),
    ],
)
def test_probe_failure_reopens_for_full_timeout(
    now: float, state: CircuitState, retry_in: float
) -> None:
    """A failed probe re-opens the circuit for another full reset_timeout from the failure."""
    breaker = _opened()
    assert breaker.allow(111.0) is True
    assert breaker.record_failure(112.0) is False  # it was already open: not a new opening
    assert breaker.state(now) is state
    assert breaker.retry_in(now) == pytest.approx(retry_in)


def test_failed_probe_then_next_probe_allowed_once() -> None:
    """After a failed probe and another timeout, exactly one new probe goes."""
    breaker = _opened()
    assert breaker.allow(110.0) is True
    breaker.record_failure(110.5)
    assert breaker.allow(115.0) is False
    assert breaker.allow(120.5) is True
    assert breaker.allow(120.5) is False
    assert breaker.record_success() is True
    assert breaker.state(120.5) is CircuitState.CLOSED


@pytest.mark.parametrize(
    ("reset_timeout", "opened_at", "now", "expected"),
    [
        pytest.param(30.0, 0.0, 0.0, 30.0, id="default-timeout"),
        pytest.param(30.0, 0.0, 29.0, 1.0, id="one-second-left"),
        pytest.param(30.0, 0.0, 31.0, 0.0, id="past-never-negative"),
        pytest.param(0.5, 10.0, 10.25, 0.25, id="short-timeout"),
    ],
)
def test_retry_in_values(
    reset_timeout: float, opened_at: float, now: float, expected: float
) -> None:
    """retry_in is opened_at + reset_timeout - now, floored at 0; 0 when closed."""
    breaker = CircuitBreaker(1, reset_timeout)
    assert breaker.retry_in(now) == 0.0
    assert breaker.record_failure(opened_at) is True
    assert breaker.retry_in(now) == pytest.approx(expected)


def test_state_values_are_strings() -> None:
    """CircuitState values are stable strings for logs and snapshots."""
    assert [s.value for s in CircuitState] == ["closed", "open", "half_open"]
    assert CircuitState.HALF_OPEN == "half_open"
