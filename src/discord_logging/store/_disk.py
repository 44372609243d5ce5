"""A diskcache ``Disk`` that stores JSON only and refuses to unpickle anything.

diskcache unpickles values (and non-string keys) by default; a writable store directory would
then be a code-execution hole (CVE-2025-69872, no fix upstream). Here keys must be strings,
values are written as JSON text, and a row in pickle mode is refused on read.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import diskcache
from diskcache.core import MODE_PICKLE, UNKNOWN

from ..errors import DiscordLoggingError
from ..fork_gate import FORK_GATE
from ._paths import DIRECTORY_MODE, FILE_MODE, private_directory, private_sqlite_files


class UnsafeStoreRow(DiscordLoggingError):
    """A store row was written as a pickle (not by us): it is refused, never loaded."""


# ASCII JSON: a lone surrogate from a log message is escaped, not an encoding error. One
# encoder for every row: json.dumps would build one per call (the writer encodes each letter,
# its index row and its history entry).
_ENCODE = json.JSONEncoder(ensure_ascii=True, separators=(",", ":")).encode

# The stubs type Disk's hooks too narrowly for an override that changes what is stored.
_Disk: Any = diskcache.Disk


class JSONOnlyDisk(_Disk):  # type: ignore[misc]
    """String keys, JSON values, no pickle in either direction."""

    def put(self, key: Any) -> tuple[Any, bool]:
        if type(key) is not str:
            raise TypeError("store keys are strings")
        return key, True

    def get(self, key: Any, raw: bool) -> Any:
        if not raw:
            raise UnsafeStoreRow("refused a pickled key in the store")
        return key

    def store(self, value: Any, read: bool, key: Any = UNKNOWN) -> tuple[Any, ...]:
        if read:
            raise TypeError("the store keeps JSON values only")
        text = _ENCODE(value)
        return tuple(super().store(text, False, key=key))

    def _write(self, full_path: str, iterator: Any, mode: str, encoding: str | None = None) -> Any:
        # A large value goes to a file in two levels of subdirectories, made with the umask.
        size = super()._write(full_path, iterator, mode, encoding)
        os.chmod(full_path, FILE_MODE)
        folder = os.path.dirname(full_path)
        for made in (folder, os.path.dirname(folder)):
            os.chmod(made, DIRECTORY_MODE)
        return size

    def fetch(self, mode: int, filename: str | None, value: Any, read: bool) -> Any:
        if mode == MODE_PICKLE:
            raise UnsafeStoreRow(
                "refused a pickled row in the store (possibly planted); delete it with "
                "'discord-logging dead-letters purge' or remove the store directory"
            )
        text = super().fetch(mode, filename, value, False)
        if isinstance(text, bytes):
            text = text.decode("utf-8")
        return json.loads(text)


_CONNECTIONS: list[sqlite3.Connection] = []
_CONNECTIONS_LOCK = threading.Lock()


def _new_lock_in_child() -> None:
    # A parent thread may have held the lock at the fork (it is taken outside the fork gate
    # for a moment on every new connection): the child would wait for it forever.
    global _CONNECTIONS_LOCK
    _CONNECTIONS_LOCK = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_new_lock_in_child)


def _keep_connection(con: sqlite3.Connection) -> None:
    with _CONNECTIONS_LOCK:
        _CONNECTIONS[:] = [c for c in _CONNECTIONS if _open(c)]
        _CONNECTIONS.append(con)


def _open(con: sqlite3.Connection) -> bool:
    try:
        con.total_changes  # noqa: B018 - raises once the connection is closed
    except sqlite3.ProgrammingError:
        return False
    return True


class GatedCache(diskcache.Cache):
    """A diskcache Cache whose transactions pass through the fork gate (see
    :class:`~discord_logging.fork_gate.ForkGate`): a fork never cuts one in half."""

    @property
    def _con(self) -> sqlite3.Connection:
        # diskcache keeps one connection per thread in a thread-local. When a thread ends
        # (the store thread at close, a parent's threads in a forked child) that local is
        # dropped and Python 3.13 warns for a connection it never closed, or that may not be
        # closed from another thread. Each connection is therefore also kept here until the
        # process ends or it was closed: the operating system closes what is left at exit.
        con: sqlite3.Connection = super()._con  # type: ignore[misc]
        local = self.__dict__["_local"]  # diskcache's thread-local
        if getattr(local, "kept", None) is not con:
            local.kept = con
            _keep_connection(con)
        return con

    @contextlib.contextmanager
    def _transact(self, retry: bool = False, filename: str | None = None) -> Iterator[Any]:
        with FORK_GATE.passage(), super()._transact(retry, filename) as opened:  # type: ignore[misc]
            yield opened


SMALL_VOLUME = 512 * 1024 * 1024  # below this size, the WAL is kept small


def wal_settings(path: Path) -> dict[str, int]:
    """diskcache's WAL pragmas for a cache at ``path``: small on a small volume."""
    try:
        st = os.statvfs(path)
    except OSError:
        return {}
    if st.f_blocks * st.f_frsize < SMALL_VOLUME:
        return {"sqlite_wal_autocheckpoint": 64, "sqlite_journal_size_limit": 256 * 1024}
    return {"sqlite_wal_autocheckpoint": 1000, "sqlite_journal_size_limit": -1}


def open_cache(path: Path) -> diskcache.Cache:
    """A diskcache Cache in a private directory, JSON only, never evicting on its own."""
    private_directory(path)
    cache = GatedCache.__new__(GatedCache)
    try:
        with FORK_GATE.passage():  # opening writes the cache's settings
            cache.__init__(  # type: ignore[misc]
                str(path),
                disk=JSONOnlyDisk,
                eviction_policy="none",
                size_limit=2**62,
                cull_limit=0,  # no automatic culling per write: retention is ours; claims expire
                # diskcache's defaults (32 MB page cache and 64 MB mmap per connection) cost an
                # app ~100 MB of RSS across our caches; a few MB each is plenty here.
                sqlite_cache_size=1024,
                sqlite_mmap_size=0,
                # On a small volume the WAL is checkpointed every 64 pages and cut back to
                # 256 KiB after, so it never grows into the room kept free; elsewhere SQLite's
                # defaults (faster; docs/architecture.md, "A full disk").
                **wal_settings(path),
                timeout=5,  # seconds a writer waits for another process's lock
            )
    except BaseException:
        # A corrupt file fails after the connection opened: close it rather than leak it.
        with contextlib.suppress(Exception):
            cache.close()
        raise
    private_sqlite_files(path / diskcache.core.DBNAME)
    return cache


class CacheFolder:
    """One diskcache per name under ``root`` (per alert type, per webhook), opened on first use.

    Opening is locked: two threads must not each open one and orphan the other's connection.
    ``close()`` closes the calling thread's connections (SQLite connections belong to the
    thread that opened them); a cache reconnects on its next use."""

    def __init__(self, root: Path) -> None:
        self.root = private_directory(root)
        self._caches: dict[str, diskcache.Cache] = {}
        self._lock = threading.Lock()

    def get(self, name: str) -> diskcache.Cache:
        """The cache for ``name`` (a safe directory name, checked by the caller)."""
        cache = self._caches.get(name)
        if cache is None:
            with self._lock:
                cache = self._caches.get(name)
                if cache is None:
                    cache = self._caches[name] = open_cache(self.root / name)
        return cache

    def names(self) -> list[str]:
        """Names that have a cache on disk (opened or not); damaged ones set aside (their
        names carry ``.damaged-``, see ``_damage``) are not caches any more."""
        return sorted(
            p.name for p in self.root.iterdir() if p.is_dir() and ".damaged-" not in p.name
        )

    def close(self) -> None:
        """Close this thread's connections to every opened cache."""
        for cache in list(self._caches.values()):
            cache.close()


# -- bulk reads ---------------------------------------------------------------------------------
# diskcache reads one key per statement. The delivery path reads pages of rows with one
# statement each instead: every statement releases and retakes the GIL, and while the writer
# thread runs, each retake can wait a whole switch interval (5 ms).


def keys_after(cache: diskcache.Cache, after: str | None, limit: int) -> list[str]:
    """Up to ``limit`` keys of ``cache`` after ``after`` (from the first when None), in order."""
    raw: Any = cache
    where, params = ("WHERE key > ? ", (after, limit)) if after is not None else ("", (limit,))
    query = "SELECT key FROM Cache " + where + "ORDER BY key LIMIT ?"  # noqa: S608 - constants
    rows = raw._sql(query, params).fetchall()
    return [key for (key,) in rows]


def count_keys(cache: diskcache.Cache, pattern: str) -> int:
    """How many keys of ``cache`` match the GLOB ``pattern`` (one statement)."""
    raw: Any = cache
    ((count,),) = raw._sql("SELECT COUNT(*) FROM Cache WHERE key GLOB ?", (pattern,)).fetchall()
    return int(count)


def values_of(cache: diskcache.Cache, keys: list[str], now: float) -> dict[str, Any]:
    """The values of those ``keys`` that ``cache`` holds and that have not expired at ``now``
    (one statement per 500 keys); a value that cannot be decoded (a pickle, corrupt JSON) is
    given as the exception raised."""
    raw: Any = cache
    found: dict[str, Any] = {}
    for start in range(0, len(keys), 500):
        chunk = keys[start : start + 500]
        marks = ",".join("?" * len(chunk))
        rows = raw._sql(
            "SELECT key, mode, filename, value FROM Cache WHERE key IN ("  # noqa: S608 - "?"s
            + marks
            + ") "
            "AND (expire_time IS NULL OR expire_time > ?)",
            (*chunk, now),
        ).fetchall()
        for key, mode, filename, value in rows:
            found[key] = _decoded(raw, mode, filename, value)
    return found


def _decoded(cache: Any, mode: int, filename: str | None, value: Any) -> Any:
    try:
        return cache._disk.fetch(mode, filename, value, False)
    except (UnsafeStoreRow, json.JSONDecodeError, UnicodeDecodeError) as exc:
        return exc


def put_many(cache: diskcache.Cache, values: dict[str, Any], expire: float | None) -> None:
    """Write ``values`` with one statement per 500, in diskcache's own row format (its
    triggers keep the counts and sizes), as ``cache.set`` would each: a replaced row's value
    file, if it had one, is removed as set removes it. Bulk, because each ``set`` is a
    transaction of its own with half a dozen statements, and the writer thread's share of
    the GIL is what the event loop waits for."""
    raw: Any = cache
    now = time.time()
    expire_time = None if expire is None else now + expire
    rows = []
    for key, value in values.items():
        size, mode, filename, stored = raw._disk.store(value, False, key=key)
        rows.append((key, now, expire_time, now, size, mode, filename, stored))
    keys = list(values)
    with raw._transact() as (sql, cleanup):
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            _drop_files(sql, cleanup, chunk)
            raw._con.executemany(
                "INSERT INTO Cache(key, raw, store_time, expire_time, access_time, "
                "access_count, tag, size, mode, filename, value) "
                "VALUES (?, 1, ?, ?, ?, 0, NULL, ?, ?, ?, ?) "
                "ON CONFLICT(key, raw) DO UPDATE SET store_time = excluded.store_time, "
                "expire_time = excluded.expire_time, access_time = excluded.access_time, "
                "size = excluded.size, mode = excluded.mode, filename = excluded.filename, "
                "value = excluded.value",
                rows[start : start + 500],
            )


def delete_many(cache: diskcache.Cache, keys: list[str]) -> None:
    """Delete ``keys`` (missing ones are passed over) with one statement per 500, removing
    their value files as ``cache.delete`` would each."""
    raw: Any = cache
    with raw._transact() as (sql, cleanup):
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            _drop_files(sql, cleanup, chunk)
            marks = ",".join("?" * len(chunk))
            sql("DELETE FROM Cache WHERE raw = 1 AND key IN (" + marks + ")", chunk)  # noqa: S608


def _drop_files(sql: Any, cleanup: Any, keys: list[str]) -> None:
    """Have diskcache remove, once the transaction ends, the value files of ``keys``' rows
    (large values live in files beside the database)."""
    marks = ",".join("?" * len(keys))
    query = "SELECT filename FROM Cache WHERE raw = 1 AND filename IS NOT NULL AND key IN ("
    for (name,) in sql(query + marks + ")", keys).fetchall():
        cleanup(name)
