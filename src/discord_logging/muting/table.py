"""Where the fleet shares its mutes: ``mutes.sqlite3`` in the store directory (mode 0600), or
Redis when ``DISCORD_REDIS_URL`` is set. Both keep the same things: each mute (its row), each
process's tally of what it held, and who sent its summary (claimed once, compare-and-set).

Used from the worker thread (:mod:`.gate`) and from the caller's thread of ``handler.mute()``
and the CLI, each with its own connection. Every method may raise ``sqlite3.Error``,
``OSError`` or ``redis.RedisError``: the gate counts them and keeps what it read last.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final, Protocol

from .rules import ALL, Mute, Tally

FILE_NAME: Final = "mutes.sqlite3"
KEY_PREFIX: Final = "discord-logging:mute"
_BUSY_TIMEOUT: Final = 2.0


class MuteTable(Protocol):
    """The shared mutes (see the module)."""

    def add(self, mute: Mute) -> bool:
        """Keep ``mute``; False when one of its id exists already (then nothing changes)."""

    def mutes(self) -> list[tuple[Mute, bool]]:
        """Every mute kept, with whether its summary was claimed."""

    def end(self, mute_id: str, now: float) -> None:
        """End ``mute_id`` at ``now`` (if it ends later)."""

    def add_tally(self, mute_id: str, holder: str, tally: Tally) -> None:
        """This holder's tally of ``mute_id`` so far (it replaces the one written before)."""

    def claim_summary(self, mute_id: str, holder: str) -> Tally | None:
        """The fleet's tally of ``mute_id`` when ``holder`` is the first to claim its summary,
        else None."""

    def forget(self, mute_id: str) -> None:
        """Delete ``mute_id`` and its tallies."""

    def close(self) -> None: ...


def open_table(directory: Path, redis_url: str | None) -> MuteTable:
    """The table the fleet shares: Redis when ``redis_url`` is given, else the store's."""
    if redis_url:
        return RedisMuteTable(redis_url)
    return SqliteMuteTable(directory)


def unmute_targets(kept: list[tuple[Mute, bool]], selector: str, now: float) -> list[Mute]:
    """The active mutes ``selector`` names: a mute id (or its prefix), an alert type, or
    ``all`` (every active mute)."""
    active = [mute for mute, _ in kept if mute.active(now)]
    if selector == ALL:
        return active
    by_id = [m for m in active if m.id == selector or m.id.startswith(selector)]
    return by_id or [m for m in active if selector in m.types or m.scope == selector]


class SqliteMuteTable:
    """The mutes of every process using one store directory."""

    def __init__(self, directory: Path) -> None:
        import sqlite3  # here: the handler's module never loads it on the caller's thread

        from ..store._paths import private_directory, private_file, private_sqlite_files

        private_directory(directory)
        path = private_file(directory / FILE_NAME)
        self._db = sqlite3.connect(
            path, isolation_level=None, timeout=_BUSY_TIMEOUT, check_same_thread=False
        )
        self._db.executescript(
            "CREATE TABLE IF NOT EXISTS mutes (id TEXT PRIMARY KEY, data TEXT NOT NULL, "
            "summarized_by TEXT);"
            "CREATE TABLE IF NOT EXISTS tallies (mute_id TEXT NOT NULL, holder TEXT NOT NULL, "
            "data TEXT NOT NULL, PRIMARY KEY (mute_id, holder));"
        )
        private_sqlite_files(path)

    def add(self, mute: Mute) -> bool:
        cursor = self._db.execute(
            "INSERT OR IGNORE INTO mutes (id, data) VALUES (?, ?)", (mute.id, mute.to_json())
        )
        return cursor.rowcount == 1

    def mutes(self) -> list[tuple[Mute, bool]]:
        rows = self._db.execute("SELECT data, summarized_by FROM mutes").fetchall()
        return [(Mute.from_json(data), by is not None) for data, by in rows]

    def end(self, mute_id: str, now: float) -> None:
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            row = db.execute("SELECT data FROM mutes WHERE id = ?", (mute_id,)).fetchone()
            if row is not None:
                mute = Mute.from_json(row[0])
                if mute.end > now:
                    ended = Mute(**{**_fields(mute), "end": max(now, mute.start)})
                    db.execute("UPDATE mutes SET data = ? WHERE id = ?", (ended.to_json(), mute_id))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def add_tally(self, mute_id: str, holder: str, tally: Tally) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO tallies (mute_id, holder, data) VALUES (?, ?, ?)",
            (mute_id, holder, tally.to_json()),
        )

    def claim_summary(self, mute_id: str, holder: str) -> Tally | None:
        claimed = self._db.execute(
            "UPDATE mutes SET summarized_by = ? WHERE id = ? AND summarized_by IS NULL",
            (holder, mute_id),
        )
        if claimed.rowcount != 1:
            return None
        total = Tally()
        for (data,) in self._db.execute("SELECT data FROM tallies WHERE mute_id = ?", (mute_id,)):
            total.merge(Tally.from_json(data))
        return total

    def forget(self, mute_id: str) -> None:
        self._db.execute("DELETE FROM tallies WHERE mute_id = ?", (mute_id,))
        self._db.execute("DELETE FROM mutes WHERE id = ?", (mute_id,))

    def close(self) -> None:
        self._db.close()


class RedisMuteTable:
    """The mutes of every process on one Redis: the hash ``discord-logging:mutes`` (id ->
    mute), ``discord-logging:mute:<id>:tallies`` (holder -> tally) and the claim key
    ``discord-logging:mute:<id>:summary`` (SET NX)."""

    def __init__(self, url: str) -> None:
        import redis

        self._redis: Any = redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)
        self._mutes = f"{KEY_PREFIX}s"

    def add(self, mute: Mute) -> bool:
        return bool(self._redis.hsetnx(self._mutes, mute.id, mute.to_json()))

    def mutes(self) -> list[tuple[Mute, bool]]:
        rows = self._redis.hgetall(self._mutes)
        if not rows:
            return []
        mutes = [Mute.from_json(data) for data in rows.values()]
        claimed = self._redis.mget([f"{KEY_PREFIX}:{m.id}:summary" for m in mutes])
        return [(m, c is not None) for m, c in zip(mutes, claimed, strict=True)]

    def end(self, mute_id: str, now: float) -> None:
        data = self._redis.hget(self._mutes, mute_id)
        if data is not None:
            mute = Mute.from_json(data)
            if mute.end > now:
                ended = Mute(**{**_fields(mute), "end": max(now, mute.start)})
                self._redis.hset(self._mutes, mute_id, ended.to_json())

    def add_tally(self, mute_id: str, holder: str, tally: Tally) -> None:
        self._redis.hset(f"{KEY_PREFIX}:{mute_id}:tallies", holder, tally.to_json())

    def claim_summary(self, mute_id: str, holder: str) -> Tally | None:
        if not self._redis.set(f"{KEY_PREFIX}:{mute_id}:summary", holder, nx=True, ex=86_400 * 8):
            return None
        total = Tally()
        for data in self._redis.hgetall(f"{KEY_PREFIX}:{mute_id}:tallies").values():
            total.merge(Tally.from_json(data))
        return total

    def forget(self, mute_id: str) -> None:
        self._redis.hdel(self._mutes, mute_id)
        self._redis.delete(f"{KEY_PREFIX}:{mute_id}:tallies")

    def close(self) -> None:
        self._redis.close()


def _fields(mute: Mute) -> dict[str, Any]:
    return {name: getattr(mute, name) for name in Mute.__dataclass_fields__}
