"""Exponential backoff with jitter (pure: the random source is passed in)."""

from __future__ import annotations

import os
import random
from collections.abc import Callable
from typing import Final

BASE_DELAY: Final = 1.0
MAX_DELAY: Final = 60.0

# The library's own random source for jitter: drawing from the global ``random`` module on
# the worker thread would move the application's generator (a seeded simulation, a test
# tool such as hypothesis, which rejects a strategy whose global random state moved).
_JITTER: Final = random.Random()
jitter: Final = _JITTER.random
if hasattr(os, "register_at_fork"):  # forked workers must not jitter in lockstep
    os.register_at_fork(after_in_child=_JITTER.seed)


def backoff_delay(
    attempt: int,
    *,
    base: float = BASE_DELAY,
    cap: float = MAX_DELAY,
    rand: Callable[[], float] = jitter,
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
    rand: Callable[[], float] = jitter,
) -> float:
    """What to wait before retrying: Discord's ``retry_after`` when given, else the backoff."""
    if retry_after is not None:
        return retry_after
    return backoff_delay(attempt, rand=rand)
