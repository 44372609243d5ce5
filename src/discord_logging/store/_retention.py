"""Retention arithmetic shared by the history and the dead letters.

Both keep one diskcache per name, keyed ``<µs since the epoch, zero-padded>-<id>`` (see
:func:`~discord_logging.store.history.entry_key`), so the oldest rows come first and "older
than" is a prefix of the key order: nothing here reads a row it does not delete.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Final

import diskcache

from ._exports import appended_export
from ._paths import private_parent

ROW_OVERHEAD: Final = 200  # bytes per row beyond its JSON (key, index, SQLite's own)
SAMPLE: Final = 100  # newest rows whose size estimates a cache's average row

Reader = Callable[[diskcache.Cache, str], "dict[str, Any] | None"]


def created_of(key: str) -> float:
    """The time a store key was made for (its first 17 digits are microseconds)."""
    return int(key[:17]) / 1_000_000


def keys_before(cache: diskcache.Cache, before: float) -> list[str]:
    """The keys of ``cache`` made before ``before``, oldest first."""
    doomed = []
    for key in cache.iterkeys():
        if created_of(key) >= before:
            break
        doomed.append(key)
    return doomed


def excess_keys(cache: diskcache.Cache, share: int, read: Reader) -> list[str]:
    """The oldest keys to delete so that ``cache`` holds about ``share`` bytes.

    The size is estimated from the newest rows' JSON lengths: SQLite reuses freed pages
    rather than shrinking its file, so the file's size cannot say when to stop."""
    sizes = [
        len(json.dumps(row))
        for key, _ in zip(cache.iterkeys(reverse=True), range(SAMPLE), strict=False)
        if (row := read(cache, key)) is not None
    ]
    if not sizes:
        return []
    keep = max(1, share // (sum(sizes) // len(sizes) + ROW_OVERHEAD))
    excess = len(cache) - keep
    if excess <= 0:
        return []
    return [key for key, _ in zip(cache.iterkeys(), range(excess), strict=False)]


def export_rows(export: Path, rows: Iterable[dict[str, Any]]) -> None:
    """Append ``rows`` to ``export`` as JSON Lines (created 0600: rows hold message text; a
    missing directory is created 0700, an existing one is the user's choice). Never written
    through a link or into another user's file (:func:`.appended_export`)."""
    private_parent(export)
    with appended_export(export) as out:
        for row in rows:
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
