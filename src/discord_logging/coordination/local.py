"""Limits shared by the lanes of this process only: no I/O, today's behaviour.

Also the fallback share of :mod:`.redis` while Redis is unreachable.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from . import Coordinator, ledger
from .ledger import Limits, State

T = TypeVar("T")


class LocalCoordinator(Coordinator):
    """States kept in a dict; one asyncio loop makes every change atomic on its own."""

    backend = "local"

    def __init__(self, limits: Limits, *, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(limits, clock)
        self._states: dict[str, State] = {}
        self._claims: dict[str, tuple[str, float]] = {}  # letter -> (holder, expires)

    async def _transact(
        self, keys: tuple[str, ...], change: Callable[[list[State], float], T]
    ) -> T:
        return self.change(keys, change)

    def change(self, keys: tuple[str, ...], change: Callable[[list[State], float], T]) -> T:
        """:meth:`_transact` without the coroutine (no I/O, so nothing to await)."""
        states = self._states
        found = []
        for key in keys:
            state = states.get(key)
            if state is None:
                state = states[key] = ledger.empty_state(key)
            found.append(state)
        return change(found, self.clock())

    async def claim(self, letter_id: str, holder: str, lease: float) -> bool:
        now = self.clock()
        current = self._claims.get(letter_id)
        if current is not None and current[0] != holder and current[1] > now:
            return False
        self._claims[letter_id] = (holder, now + lease)
        return True

    async def renew(self, letter_id: str, holder: str, lease: float) -> bool:
        current = self._claims.get(letter_id)
        now = self.clock()
        if current is None or current[0] != holder or current[1] <= now:
            return False
        self._claims[letter_id] = (holder, now + lease)
        return True

    async def release(self, letter_id: str, holder: str) -> None:
        current = self._claims.get(letter_id)
        if current is not None and current[0] == holder:
            del self._claims[letter_id]
