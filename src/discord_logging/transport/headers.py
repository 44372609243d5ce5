"""Discord's rate-limit answers as pure data: the ``X-RateLimit-*`` headers of every response
and the body of a 429 (Discord's own, or Cloudflare's ban page), all taking ``now``.

The limits themselves are kept by :mod:`discord_logging.coordination.ledger` (see
docs/architecture.md, "Rate limits").
"""

from __future__ import annotations

import json
import math
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
