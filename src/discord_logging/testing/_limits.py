"""Fixed-window rate limit counters for the fake, shaped like Discord's buckets."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class FixedWindow:
    """``limit`` hits per ``period`` seconds; the window opens at the first hit after it expires.

    Discord's webhook bucket behaves this way: ``X-RateLimit-Reset-After`` counts down from the
    first request of a window, and the whole allowance comes back at once when it reaches zero.
    Not thread-safe on its own: the fake calls it under its state lock.
    """

    limit: int
    period: float
    start: float | None = None
    count: int = 0

    def _roll(self, now: float) -> None:
        if self.start is not None and now >= self.start + self.period:
            self.start = None
            self.count = 0

    def try_acquire(self, now: float) -> float:
        """Take one hit; return 0.0 on success, else the seconds until the window frees."""
        self._roll(now)
        if self.count >= self.limit:
            return self.reset_after(now)
        if self.start is None:
            self.start = now
        self.count += 1
        return 0.0

    def remaining(self, now: float) -> int:
        """Hits left in the current window (the full limit if no window is open)."""
        self._roll(now)
        return max(0, self.limit - self.count)

    def reset_after(self, now: float) -> float:
        """Seconds until the current window closes (a full period if none is open)."""
        self._roll(now)
        if self.start is None:
            return self.period
        return max(0.0, self.start + self.period - now)

    def clear(self) -> None:
        """Forget the current window."""
        self.start = None
        self.count = 0
