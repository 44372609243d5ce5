"""Discord's rate limits as pure arithmetic: header parsing and the limiters, all taking ``now``.

Four kinds are honoured before Discord has to say no (see docs/architecture.md):
the per-webhook bucket announced in ``X-RateLimit-*`` headers (:class:`WebhookBucket`), the hidden
per-channel limit of about 30 messages a minute (:class:`SlidingWindow`), the 50 requests/s global
limit (another :class:`SlidingWindow`), and 429 answers (:func:`parse_too_many_requests`).
"""

from __future__ import annotations

import json
import math
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

# How long every lane stays quiet after a Cloudflare ban (a 429 that Discord did not send).
BAN_COOLDOWN: Final = 300.0
_MIN_WAIT: Final = 0.05


def _float(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) and number >= 0 else None


def _header(headers: Mapping[str, str], name: str) -> str | None:
    # httpx.Headers is case-insensitive; a plain dict from a table test may not be.
    value = headers.get(name)
    if value is None:
        value = headers.get(name.lower())
    return value


@dataclass(frozen=True, slots=True)
class RateLimitHeaders:
    """What a response says about its webhook's bucket. Missing values are None."""

    limit: int | None = None
    remaining: int | None = None
    reset_after: float | None = None
    bucket: str | None = None
    scope: str | None = None
    is_global: bool = False


def parse_rate_limit_headers(headers: Mapping[str, str]) -> RateLimitHeaders:
    """Read ``X-RateLimit-*``; malformed values are treated as absent, never raised."""
    limit = _float(_header(headers, "X-RateLimit-Limit"))
    remaining = _float(_header(headers, "X-RateLimit-Remaining"))
    return RateLimitHeaders(
        limit=int(limit) if limit is not None else None,
        remaining=int(remaining) if remaining is not None else None,
        reset_after=_float(_header(headers, "X-RateLimit-Reset-After")),
        bucket=_header(headers, "X-RateLimit-Bucket"),
        scope=_header(headers, "X-RateLimit-Scope"),
        is_global=(_header(headers, "X-RateLimit-Global") or "").lower() == "true",
    )


@dataclass(frozen=True, slots=True)
class TooManyRequests:
    """A 429, read. ``cloudflare`` means it did not come from Discord: back off everywhere."""

    retry_after: float
    is_global: bool
    scope: str | None
    cloudflare: bool


def parse_too_many_requests(
    headers: Mapping[str, str], body: bytes, *, ban_cooldown: float = BAN_COOLDOWN
) -> TooManyRequests:
    """Read a 429. Discord's own carry ``Via`` and a JSON body with ``retry_after``; a 429
    without either is Cloudflare's ban page (error 1015), which needs minutes, not seconds."""
    info = parse_rate_limit_headers(headers)
    try:
        data = json.loads(body) if body else None
    except (ValueError, UnicodeDecodeError):
        data = None
    retry_after = _float(str(data.get("retry_after"))) if isinstance(data, dict) else None
    header_after = _float(_header(headers, "Retry-After"))
    if _header(headers, "Via") is None or retry_after is None:
        return TooManyRequests(
            retry_after=max(ban_cooldown, header_after or 0.0),
            is_global=True,
            scope="cloudflare",
            cloudflare=True,
        )
    is_global = bool(isinstance(data, dict) and data.get("global")) or info.is_global
    return TooManyRequests(
        retry_after=max(retry_after, _MIN_WAIT),
        is_global=is_global,
        scope=info.scope,
        cloudflare=False,
    )


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
