"""Upkeep of the durable dead letters: purging on request, retention by age and size, and
moving operator-only letters found among the retryable ones (stores written before the split).
Run by the store's writer thread, and by ``discord-logging dead-letters purge``."""

from __future__ import annotations

import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import diskcache

from ..deadletters import DeadLetter
from ._retention import excess_keys, export_rows, keys_before

DELETE_CHUNK: Final = 200  # rows per transaction when retention deletes
HELD: Final = "held"


def id_of(key: str) -> str:
    """The letter id in a key made by :func:`~.history.entry_key` (``<17 digits>-<id>``)."""
    return key[18:]


class LetterUpkeep:
    """The maintenance half of :class:`~.durable_letters.DurableDeadLetters`."""

    _index: diskcache.Cache
    _refused: set[tuple[str, str]]
    _misplaced: dict[str, tuple[str, str, DeadLetter]]
    _misplaced_lock: threading.Lock

    if TYPE_CHECKING:

        def _cache(self, webhook: str, held: bool = False) -> diskcache.Cache: ...
        def _caches(self) -> list[tuple[str, diskcache.Cache]]: ...
        def _transaction(self, bulk: bool = False) -> AbstractContextManager[None]: ...
        def _row(self, cache: diskcache.Cache, key: str) -> dict[str, Any] | None: ...
        def letters(self) -> list[DeadLetter]: ...
        def remove(self, letter_id: str) -> None: ...

    def purge(self, *, before: float | None = None, webhook: str | None = None) -> int:
        """Delete letters that died before ``before`` (all when None). Returns the count."""
        removed = 0
        for letter in self.letters():
            if webhook is not None and letter.webhook != webhook:
                continue
            if before is None or letter.dead_at < before:
                self.remove(letter.id)
                removed += 1
        # Rows refused on read (a planted pickle, a corrupt value) go too: they can't be shown.
        for hook, key in sorted(self._refused):
            if webhook is None or hook == webhook:
                self._cache(hook).delete(key)
                self._cache(hook, True).delete(key)
                self._refused.discard((hook, key))
                removed += 1
        return removed

    # -- maintenance (the store's writer thread) ---------------------------------------------

    @property
    def misplaced(self) -> int:
        """Operator-only letters found in the retryable range, waiting to be moved."""
        return len(self._misplaced)

    def move_misplaced(self) -> int:
        """Move the operator-only letters found among the retryable ones to the held range
        (one transaction). Returns how many moved."""
        with self._misplaced_lock:
            moving = list(self._misplaced.values())
        if not moving:
            return 0
        with self._transaction():
            for webhook, key, letter in moving:
                where = self._index.get(f"id:{letter.id}")
                if where is None or where == [webhook, key]:  # not re-added meanwhile
                    self._cache(webhook, True).set(key, letter.to_dict())
                    self._index.set(f"id:{letter.id}", [webhook, key, HELD])
                self._cache(webhook).delete(key)
        with self._misplaced_lock:
            for _, _, letter in moving:
                self._misplaced.pop(letter.id, None)
        return len(moving)

    def expire(
        self, before: float, export: Path | None, stop: Callable[[], bool] = lambda: False
    ) -> int:
        """Delete letters that died before ``before``, oldest first, exported to ``export``
        (JSON Lines) first when given. Returns how many were deleted."""
        removed = 0
        for webhook, cache in self._caches():
            removed += self._drop(webhook, cache, keys_before(cache, before), export, stop)
        return removed

    def shrink(
        self, max_bytes: int, export: Path | None, stop: Callable[[], bool] = lambda: False
    ) -> int:
        """Delete the oldest letters of each range until the letters' estimated size is under
        ``max_bytes`` (shared equally), exported first when ``export`` is given."""
        caches = self._caches()
        share = max_bytes // max(1, len(caches))
        removed = 0
        for webhook, cache in caches:
            doomed = excess_keys(cache, share, self._row)
            removed += self._drop(webhook, cache, doomed, export, stop)
        return removed

    def _drop(
        self,
        webhook: str,
        cache: diskcache.Cache,
        keys: list[str],
        export: Path | None,
        stop: Callable[[], bool],
    ) -> int:
        removed = 0
        for start in range(0, len(keys), DELETE_CHUNK):
            if stop():
                break
            chunk = keys[start : start + DELETE_CHUNK]
            if export is not None:
                export_rows(export, (row for key in chunk if (row := self._row(cache, key))))
            with self._transaction(bulk=True):
                for key in chunk:
                    letter_id = id_of(key)
                    where = self._index.get(f"id:{letter_id}")
                    if where is not None and where[0] == webhook and where[1] == key:
                        self._index.delete(f"id:{letter_id}")
                        self._index.delete(f"claim:{letter_id}")
                    cache.delete(key)
            removed += len(chunk)
        return removed
