"""A full volume (docs/architecture.md, "A full disk"): told apart from damage and from a
busy store, and the room kept free for opening the store and removing letters."""

from __future__ import annotations

import errno
import json
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final, TypeVar

from ..deadletters import DeadLetter
from ..redaction import redact
from ..stats import DeliveryStats
from ._paths import UnsafeStoreDirectory

# The room the store never fills with new letters: opening, claims, removals and lock files.
STORE_RESERVE: Final = 1024 * 1024
# Below this much free, a write's size is estimated before it is made (above, it cannot matter).
LOOK_CLOSER: Final = 16 * 1024 * 1024
FULL_RETRY: Final = 1.0  # seconds between tries of a full disk while letters arrive
WRITE_CHUNK: Final = 500  # letters a transaction writes or removes
NEAR_FULL_CHUNK: Final = 20  # the same within LOOK_CLOSER of the volume's end
T = TypeVar("T")
_FULL_ERRNOS: Final = frozenset({errno.ENOSPC, errno.EDQUOT})


def is_full(exc: BaseException) -> bool:
    """Whether ``exc`` says the volume is full (SQLITE_FULL, ENOSPC, a quota, the reserve)."""
    if isinstance(exc, DiskFull):
        return True
    if isinstance(exc, sqlite3.OperationalError):
        return "full" in str(exc).lower()
    return isinstance(exc, OSError) and exc.errno in _FULL_ERRNOS


def free_bytes(path: Path) -> int | None:
    """Bytes free on the volume holding ``path`` for this user (None: cannot tell)."""
    try:
        st = os.statvfs(path)
    except OSError:
        return None
    return st.f_bavail * st.f_frsize


def chunks(root: Path, items: list[T]) -> Iterator[tuple[int, list[T]]]:
    """``items`` as the transactions that write (or remove) them, each with where it starts:
    WRITE_CHUNK at a time (a commit has a fixed cost), NEAR_FULL_CHUNK within LOOK_CLOSER of
    the volume's end, looked at before each: what fits stays written, and a removal's pages
    (they go through the WAL too) fit in the room kept for it."""
    start = 0
    while start < len(items):
        size = NEAR_FULL_CHUNK if near_full(root) else WRITE_CHUNK
        yield start, items[start : start + size]
        start += size


def near_full(root: Path) -> bool:
    """Whether the volume holding ``root`` has less than LOOK_CLOSER free (or cannot tell)."""
    free = free_bytes(root)
    return free is None or free < LOOK_CLOSER


def needs(letters: list[DeadLetter]) -> int:
    """Bytes writing ``letters`` may take: twice their JSON (the row, and SQLite's WAL)."""
    return 2 * sum(len(json.dumps(x.to_dict())) for x in letters)


def history_to_write(
    root: Path, entries: list[dict[str, Any]], removed: list[str], stats: DeliveryStats
) -> list[dict[str, Any]]:
    """The history entries a write makes: all while the volume keeps min(half its size,
    LOOK_CLOSER) free after them; below, only those explaining a removal (a delivered
    letter), without their text, so the room left goes to letters; the others are counted
    as ``history_skipped``."""
    try:
        st = os.statvfs(root)
    except OSError:
        return entries
    free, keep = st.f_bavail * st.f_frsize, min(st.f_blocks * st.f_frsize // 2, LOOK_CLOSER)
    if free >= 2 * LOOK_CLOSER or free - 2 * len(json.dumps(entries, default=str)) >= keep:
        return entries
    gone = set(removed)
    # Slim: the entry says the letter was delivered (its message id), without its text.
    kept = [{**e, "message": "", "exc_text": None} for e in entries if e.get("id") in gone]
    if len(kept) < len(entries):
        stats.add("history_skipped", len(entries) - len(kept))
    return kept


def make_room(root: Path, letters: list[DeadLetter]) -> None:
    """Raise :class:`DiskFull` when writing ``letters`` would leave the volume less than
    STORE_RESERVE free (that room is for opening, claims and removals)."""
    free = free_bytes(root)
    if free is not None and free < LOOK_CLOSER and free - needs(letters) < STORE_RESERVE:
        raise DiskFull([], letters, None)


class DiskFull(OSError):
    """A write of letters met a full volume: ``written`` are on disk, ``unwritten`` are not."""

    def __init__(
        self, written: list[DeadLetter], unwritten: list[DeadLetter], cause: BaseException | None
    ) -> None:
        super().__init__(errno.ENOSPC, f"the volume is full ({cause or 'under the reserve'})")
        self.written = written
        self.unwritten = unwritten


def failure_words(path: Path, exc: BaseException, retry: float) -> str:
    """The one stderr line of a store that fails (without the library's prefix)."""
    if is_full(exc):
        return (
            f"the volume of the store at {path} is full ({type(exc).__name__}: "
            f"{str(exc)[:100]}); what was written stays on disk for the next start; new dead "
            "letters are kept in memory, and moved to the store as room returns (tried at most "
            "once a second while letters arrive). Free room on that volume or point "
            "DISCORD_STORE_PATH elsewhere."
        )
    if isinstance(exc, UnsafeStoreDirectory):  # its own words name the path and the fix
        return f"{exc} Meanwhile dead letters are kept in memory and history is off."
    return (
        f"the store at {path} cannot be used ({type(exc).__name__}: "
        f"{redact(str(exc))[:200]}); dead letters are kept in memory and history is off until "
        f"it works again (tried every {retry:.0f} s). Check the disk and DISCORD_STORE_PATH."
    )
