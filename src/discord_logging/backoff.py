"""Exponential backoff with jitter (pure: the random source is passed in)."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Final

BASE_DELAY: Final = 1.0
MAX_DELAY: Final = 60.0


def backoff_delay(
    attempt: int,
    *,
    base: float = BASE_DELAY,
    cap: float = MAX_DELAY,
    rand: Callable[[], float] = random.random,
) -> float:
    """Delay before retry number ``attempt`` (1 = first retry): base * 2**(attempt-1), capped,
    then jittered into [d/2, d] so that processes that failed together do not retry together."""
    # Cap the exponent before raising 2 to it: 2.0 ** 1100 overflows.
    exponential: float = min(cap, base * 2.0 ** min(max(0, attempt - 1), 60))
    return exponential / 2 + rand() * exponential / 2


def retry_delay(
    attempt: int,
    retry_after: float | None,
    *,
    rand: Callable[[], float] = random.random,
) -> float:
    """What to wait before retrying: Discord's ``retry_after`` when given, else the backoff."""
    if retry_after is not None:
        return retry_after
    return backoff_delay(attempt, rand=rand)
