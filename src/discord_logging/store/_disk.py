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
import stat
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import diskcache
from diskcache.core import MODE_PICKLE, UNKNOWN

from ..errors import ConfigurationError, DiscordLoggingError
from ..lifecycle import FORK_GATE

DIRECTORY_MODE: Final = 0o700
FILE_MODE: Final = 0o600


class UnsafeStoreRow(DiscordLoggingError):
    """A store row was written as a pickle (not by us): it is refused, never loaded."""


class UnsafeStoreDirectory(ConfigurationError, PermissionError):
    """A store directory another user could reach: refused (docs/security.md). A
    ``PermissionError`` too: what handles a directory it may not use handles this one."""

    def __init__(self, path: Path, problem: str) -> None:
        self.problem = f"the store directory {path} {problem}"  # without the fix, for a 2nd line
        super().__init__(
            f"the store directory {path} {problem}: another user could read the alerts "
            "and plant letters. Fix: point DISCORD_STORE_PATH at a directory that does not "
            "exist yet (it is created 0700, owner only), or give this one to the "
            f"application's user (uid {os.geteuid()}) and make it 0700."
        )


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
        # ASCII JSON: a lone surrogate from a log message is escaped, not an encoding error.
        text = json.dumps(value, ensure_ascii=True, separators=(",", ":"))
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


def private_directory(path: Path) -> Path:
    """The store's directory ``path``, only its owner's (docs/security.md, "A store only its
    owner can touch"): created with its missing parents, mode 0700; an existing one is
    checked with ``lstat``: this user's and open to others, tightened to 0700 (said once);
    another user's, or one that cannot be tightened, or a symbolic link another user made,
    refused with :class:`UnsafeStoreDirectory`."""
    if os.path.lexists(path):  # before mkdir: a planted link is never followed
        _check_owned(path)
    else:
        _create_private(path)
    return path


def _create_private(path: Path) -> None:
    """Create ``path`` and its missing parents, mode 0700."""
    missing = [p for p in (path, *path.parents) if not os.path.lexists(p)]
    path.mkdir(parents=True, exist_ok=True, mode=DIRECTORY_MODE)
    for created in missing:
        os.chmod(created, DIRECTORY_MODE)  # mkdir's mode is masked by the umask


def _check_owned(path: Path) -> None:
    me = os.geteuid()
    found = os.lstat(path)
    if stat.S_ISLNK(found.st_mode):
        if found.st_uid != me:  # planted: a link cannot be given away without root
            raise UnsafeStoreDirectory(path, f"is a symbolic link made by uid {found.st_uid}")
        found = os.stat(path)  # this user's own link (a store put on another disk)
    if found.st_uid != me:
        mode = stat.S_IMODE(found.st_mode)
        raise UnsafeStoreDirectory(path, f"is owned by uid {found.st_uid} (mode {mode:04o})")
    if found.st_mode & 0o077:
        try:
            os.chmod(path, DIRECTORY_MODE)
        except OSError as exc:
            raise UnsafeStoreDirectory(
                path, f"is open to other users and cannot be made 0700 ({exc.strerror})"
            ) from exc
        _say_tightened(path, stat.S_IMODE(found.st_mode))


_TIGHTENED: set[Path] = set()


def _say_tightened(path: Path, mode: int) -> None:
    if path not in _TIGHTENED:
        _TIGHTENED.add(path)
        print(
            f"discord-logging: the store directory {path} was open to other users (mode "
            f"{mode:04o}); made 0700, owner only.",
            file=sys.stderr,
        )


def private_file(path: Path) -> Path:
    """Create ``path`` if missing with mode 0600 (exports hold message text); a missing
    directory is created 0700, an existing one is the user's choice and left as it is."""
    _create_private(path.parent)
    if not path.exists():
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY | os.O_NOFOLLOW, FILE_MODE))
    return path


def private_sqlite_files(database: Path) -> None:
    """Make an SQLite database and its ``-wal``/``-shm`` companions 0600 (created with the
    umask); SQLite gives the companions it creates later the database file's mode."""
    for name in (database.name, database.name + "-wal", database.name + "-shm"):
        with contextlib.suppress(FileNotFoundError):
            os.chmod(database.with_name(name), FILE_MODE)


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
    :class:`~discord_logging.lifecycle.ForkGate`): a fork never cuts one in half."""

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
