"""Circuit breaker per webhook: stop hammering a webhook that keeps failing (pure logic)."""

from __future__ import annotations

from enum import StrEnum
from typing import Final

FAILURE_THRESHOLD: Final = 5
RESET_TIMEOUT: Final = 30.0


class CircuitState(StrEnum):
    """closed: send; open: do not send until the timeout; half_open: one probe may go."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitBreaker:
    """Opens after ``threshold`` consecutive failed requests; after ``reset_timeout`` one probe
    is let through (half-open); its success closes the circuit, its failure opens it again."""

    def __init__(self, threshold: int = FAILURE_THRESHOLD, reset_timeout: float = RESET_TIMEOUT):
        self.threshold = threshold
        self.reset_timeout = reset_timeout
        self.failures = 0
        self.opened_at: float | None = None
        self._probing = False

    def state(self, now: float) -> CircuitState:
        """The state at ``now``."""
        if self.opened_at is None:
            return CircuitState.CLOSED
        if now - self.opened_at >= self.reset_timeout:
            return CircuitState.HALF_OPEN
        return CircuitState.OPEN

    def allow(self, now: float) -> bool:
        """Whether a request may go at ``now``; in half-open only one probe at a time."""
        state = self.state(now)
        if state is CircuitState.CLOSED:
            return True
        if state is CircuitState.HALF_OPEN and not self._probing:
            self._probing = True
            return True
        return False

    def retry_in(self, now: float) -> float:
        """Seconds until the circuit lets a probe through (0 when it does now)."""
        if self.opened_at is None:
            return 0.0
        return max(0.0, self.opened_at + self.reset_timeout - now)

    def record_success(self) -> bool:
        """A request succeeded. Returns True when this closed an open circuit."""
        was_open = self.opened_at is not None
        self.failures = 0
        self.opened_at = None
        self._probing = False
        return was_open

    def probe_done(self) -> None:
        """A probe got an answer that is neither success nor failure (a 429, a 4xx): the next
        request may probe again. Without this a half-open circuit would wait forever."""
        self._probing = False

    def record_failure(self, now: float) -> bool:
        """A request failed. Returns True when this opened the circuit."""
        self._probing = False
        self.failures += 1
        if self.opened_at is not None:
            self.opened_at = now  # a failed probe: stay open for another timeout
            return False
        if self.failures >= self.threshold:
            self.opened_at = now
            return True
        return False
