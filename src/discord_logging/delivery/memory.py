"""The memory bound: how many records a process may hold in memory on their way, and what
``emit()`` does past it (docs/architecture.md, "Memory in a flood").

The caller's side (:meth:`MemoryBound.room`) reads two numbers and takes no lock; the
worker keeps :attr:`MemoryBound.held`, its share of the count, never below the truth.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sized
from typing import Final, Protocol, TypeVar

from ..wording import write_line

DEFAULT_MAX_RECORDS: Final = 10_000
# How often a worker holding records looks again at what the store's writer has freed.
RECOUNT_INTERVAL: Final = 0.1
# Records the worker takes from the hand-off at once: each group is journaled in one JSON call,
# which holds the GIL throughout (about 3 ms per 1,000 records), and a caller's emit() waits for
# the GIL. 5,000 at once held it 14 ms unloaded, 40 ms and more on a busy machine.
TAKE_AT_ONCE: Final = 500
T = TypeVar("T")


class Lanes(Protocol):
    def queue_depth(self) -> int: ...


class MemoryBound:
    """Records in memory: the hand-off (the caller reads its length) plus ``held``, what the
    worker holds past it (taken and not handed on, the lanes', letters not written yet).
    ``store_letters`` says how many letters the store holds in memory (none: no store)."""

    def __init__(
        self, limit: int = DEFAULT_MAX_RECORDS, store_letters: Callable[[], int] | None = None
    ) -> None:
        self.limit = limit
        self.handoff: Sized = ()  # the worker's hand-off, set by the worker
        self.held = 0
        self.refused = False  # a record was refused: said once, by the worker
        self._said = False
        self._store_letters = store_letters

    def room(self) -> bool:
        """Whether one more record fits (the caller asks before it even snapshots one)."""
        if len(self.handoff) + self.held < self.limit:
            return True
        self.refused = True
        return False

    def take(self, handoff: deque[T], limit: int) -> list[T]:
        """Up to ``limit`` records from the front of ``handoff``, counted as held *before*
        they leave it: a caller never reads less than the truth between the two."""
        count = min(limit, len(handoff))
        self.held += count
        return [handoff.popleft() for _ in range(count)]

    def recount(self, taken: int, lanes: Lanes | None) -> None:
        """The worker's share counted again: ``taken`` (not handed on yet), the lanes', the
        store's; and the one stderr line past the bound (on the worker's thread)."""
        store = self._store_letters
        self.held = (
            taken
            + (lanes.queue_depth() if lanes is not None else 0)
            + (store() if store is not None else 0)
        )
        if self.refused and not self._said:
            self._said = True
            write_line(
                f"discord-logging: {self.limit:,} records are in memory waiting for Discord or "
                f"the store, so new records are dropped and counted (stats: "
                f"dropped.memory_full) until there is room; raise DISCORD_MEMORY_MAX_RECORDS "
                f"if the memory is there, or the handler's level"
            )

    def nap(self, due: float | None) -> float | None:
        """How long the worker may sleep: while it holds half the bound or more, it looks again
        soon at what the store's writer freed (a stale count would refuse records)."""
        if self.held < self.limit // 2:
            return due
        return min(due, RECOUNT_INTERVAL) if due is not None else RECOUNT_INTERVAL


def refusal(closed: bool, failed: bool | None) -> str:
    """Why ``emit()`` could not hand a record over (``failed`` None: no worker): the handler
    is closed, delivery could not start, or the memory bound."""
    if closed or failed is None:
        return "closed"
    return "worker_failed" if failed else "memory_full"
