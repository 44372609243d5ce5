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

    async def _transact(
        self, keys: tuple[str, ...], change: Callable[[list[State], float], T]
    ) -> T:
        return self.change(keys, change)

    async def _read(self, keys: tuple[str, ...]) -> tuple[list[State], float]:
        """Copies of the states: a look changes nothing, whatever is done with what it saw."""
        live = [(key, self._states.get(key) or ledger.empty_state(key)) for key in keys]
        return [ledger.decode(key, ledger.encode(state)) for key, state in live], self.clock()

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
