"""Damaged store files: found, set aside under a dated name, never left to stop the store.

A disk hiccup or a half-copied backup can leave a cache's SQLite file unreadable. Falling back
to memory "until the disk works again" would then last forever, since the file stays damaged.
Instead the damaged cache's directory is renamed ``<name>.damaged-<UTC stamp>`` (kept for a
person to look at), a fresh one is opened in its place, and the letters' index is rebuilt
from the letter files that are still readable.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Final

from ..wording import counted

DAMAGED: Final = ".damaged-"
# Where the store keeps its caches: one level (the index) or two (one per name).
_CACHE_FILES: Final = (
    "deadletters-index/cache.db",
    "deadletters/*/cache.db",
    "deadletters-held/*/cache.db",
    "history/*/cache.db",
)


def is_damage(exc: BaseException) -> bool:
    """Whether ``exc`` says a file is not a database or is corrupt (not busy, not missing)."""
    return type(exc) is sqlite3.DatabaseError or "malformed" in str(exc)


def _readable(db: Path) -> bool:
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        try:
            row = con.execute("PRAGMA quick_check").fetchone()
        finally:
            con.close()
    except sqlite3.DatabaseError:
        return False
    return bool(row) and row[0] == "ok"


def set_aside(root: Path, now: float | None = None) -> list[Path]:
    """Rename every cache directory under ``root`` whose file is damaged; returns the new
    names (empty when nothing was damaged)."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(time.time() if now is None else now))
    moved = []
    for pattern in _CACHE_FILES:
        for db in sorted(root.glob(pattern)):
            if DAMAGED in db.parent.name or _readable(db):
                continue
            target = db.parent.with_name(f"{db.parent.name}{DAMAGED}{stamp}")
            db.parent.rename(target)
            moved.append(target)
    return moved


def set_aside_words(exc: BaseException, moved: list[Path], indexed: int) -> str:
    """The one stderr line after damaged files were set aside (without the prefix)."""
    names = ", ".join(str(p) for p in moved)
    files = "a damaged store file" if len(moved) == 1 else f"{len(moved)} damaged store files"
    return (
        f"{files} set aside ({type(exc).__name__}: {str(exc)[:100]}): {names}; fresh ones "
        f"were opened and {counted(indexed, 'kept letter')} re-indexed. Look at or delete "
        "the set-aside files."
    )


def damaged_parts(root: Path) -> list[Path]:
    """Directories set aside earlier (for ``discord-logging check`` to report)."""
    return sorted(p for p in root.rglob(f"*{DAMAGED}*") if p.is_dir())
