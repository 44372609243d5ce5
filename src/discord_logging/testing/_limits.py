"""Rate limit counters for the fake: Discord's fixed-window buckets and the hidden channel log."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field


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


@dataclass
class SlidingLog:
    """At most ``limit`` hits in any ``period`` seconds: the strictest reading of Discord's
    hidden per-channel limit (which Discord does not document), so a client that never earns a
    429 here never does from a fixed window either. Not thread-safe on its own."""

    limit: int
    period: float
    hits: deque[float] = field(default_factory=deque)

    def try_acquire(self, now: float) -> float:
        """Take one hit; return 0.0 on success, else the seconds until the oldest hit leaves."""
        while self.hits and self.hits[0] <= now - self.period:
            self.hits.popleft()
        if len(self.hits) >= self.limit:
            return max(0.0, self.hits[0] + self.period - now)
        self.hits.append(now)
        return 0.0

    def clear(self) -> None:
        """Forget every hit."""
        self.hits.clear()
