"""Reference models of Discord's rate limits, kept as test oracles: the simplest correct
arithmetic for one webhook's announced bucket and for a sliding window, for one process. The
live limits are :mod:`discord_logging.coordination.ledger`'s, which tests compare with these."""

from __future__ import annotations

from collections import deque

from discord_logging.transport.headers import RateLimitHeaders


class WebhookBucket:
    """The bucket Discord announces for one webhook (about 5 requests per 2 s).

    After a response with ``Remaining == 0`` the next request waits ``Reset-After`` seconds,
    as discord.py does, instead of earning a 429. The wait starts when the response arrived,
    which is after Discord counted the request, so we never start early.
    """

    def __init__(self) -> None:
        self.blocked_until = 0.0
        self.remaining: int | None = None

    def update(self, headers: RateLimitHeaders, now: float) -> None:
        """Take in the headers of a response received at ``now``."""
        if headers.remaining is not None:
            self.remaining = headers.remaining
        if headers.remaining == 0 and headers.reset_after is not None:
            self.blocked_until = max(self.blocked_until, now + headers.reset_after)

    def block(self, seconds: float, now: float) -> None:
        """Hold back for ``seconds`` (a per-webhook 429's ``retry_after``)."""
        self.blocked_until = max(self.blocked_until, now + seconds)

    def delay(self, now: float) -> float:
        """Seconds to wait before the next request may go."""
        return max(0.0, self.blocked_until - now)


class SlidingWindow:
    """At most ``limit`` events in any ``window`` seconds.

    Used for the hidden per-channel limit (30 messages a minute) and the global 50 requests/s.
    A sliding window, not a token bucket: a bucket of 30 with a refill of 30/min lets 59
    messages through in one minute, and Discord's window would answer the 30th onward with 429.
    ``margin`` widens the window a little for clock and network jitter.
    """

    def __init__(self, limit: int, window: float, margin: float = 0.0) -> None:
        if limit < 1 or window <= 0:
            raise ValueError("a rate limit needs limit >= 1 and window > 0")
        self.limit = limit
        self.window = window + margin
        self._events: deque[float] = deque()

    def _expire(self, now: float) -> None:
        while self._events and self._events[0] <= now - self.window:
            self._events.popleft()

    def delay(self, now: float) -> float:
        """Seconds until one more event is allowed."""
        self._expire(now)
        if len(self._events) < self.limit:
            return 0.0
        return max(0.0, self._events[0] + self.window - now)

    def record(self, now: float) -> None:
        """Count an event at ``now``."""
        self._expire(now)
        self._events.append(now)

    def restamp_last(self, now: float) -> None:
        """Move the latest event to ``now`` (when its response arrived: the server counted it
        somewhere between send and receipt, so the later time is the safe one)."""
        if self._events:
            self._events[-1] = max(self._events[-1], now)

    def __len__(self) -> int:
        return len(self._events)
