"""Limits shared by every process of one host that uses the same store directory.

The states live in ``<store>/limits/limits.sqlite3``, one JSON row per key. Every change is one
``BEGIN IMMEDIATE`` transaction: SQLite takes the database's write lock before reading, so two
processes can never both read "29 of 30" and both send. WAL mode lets the transactions of
gunicorn's or Celery's workers follow each other in tens of microseconds.

A slot is named by a holder of the store (its lock file, :mod:`..store._holders`): a slot
whose holder is gone (killed mid-request) stops counting against its webhook's bucket at the
next transaction that reads it, rather than after its bound (docs/architecture.md, "Holders:
who is alive"); its window stamps stay, since Discord may have counted it.

The clock is the wall clock (``time.time``): the file outlives processes and reboots, and
``time.monotonic`` starts again at boot. Stamps from a clock that jumped far are dropped (see
``ledger.MAX_HOLD``). A store directory on a network file system is not one host: use Redis.
A database that stays locked or cannot be opened: the local share of :mod:`.shared_coordinator`.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Final, TextIO, TypeVar

from ..delivery.backoff import jitter
from ..fork_gate import FORK_GATE
from ..store._holders import HOLDERS, LOCK_SUFFIX, Holder, locked
from ..store._paths import private_directory, private_sqlite_files
from . import IncidentChange, ledger
from .ledger import Limits, State
from .shared_coordinator import RETRY_INTERVAL, SharedCoordinator

T = TypeVar("T")

FILE_NAME: Final = "limits.sqlite3"
_BUSY_TIMEOUT_MS: Final = 2000  # longer than this locked: use the local share
HOLDER_MARK: Final = "h"  # a slot id's first letter when its sender holds a lock file here
ALIVE_FOR: Final = 1.0  # seconds a holder found alive is not probed again
PRUNE_EVERY: Final = 300.0  # seconds between two deletions of incidents that are over
# Incidents over (nothing in them counts any more: coordination/incidents.py), oldest first.
_PRUNE: Final = """
DELETE FROM state WHERE key IN (
  SELECT key FROM state WHERE key >= 'incident:' AND key < 'incident;'
  AND json_extract(value, '$.u') < ? LIMIT 10000)
"""
_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS state (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


def _busy(error: sqlite3.OperationalError) -> bool:
    """Another connection holds the lock (extended codes such as SQLITE_BUSY_RECOVERY too)."""
    return (error.sqlite_errorcode & 0xFF) in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)


class HostCoordinator(SharedCoordinator):
    """Slots taken in SQLite transactions under ``<store_dir>/limits/``."""

    backend = "host"
    unreachable = (sqlite3.Error, OSError)

    def __init__(
        self,
        store_dir: Path,
        limits: Limits,
        *,
        fleet_size: int = 4,
        retry_interval: float = RETRY_INTERVAL,
        clock: Callable[[], float] = time.time,
        stderr: TextIO | None = None,
    ) -> None:
        super().__init__(
            limits, clock, fleet_size=fleet_size, retry_interval=retry_interval, stderr=stderr
        )
        self.path = Path(store_dir) / "limits" / FILE_NAME
        self._holders = Path(store_dir) / HOLDERS
        self._holder: Holder | None = None
        self._alive: dict[str, float] = {}  # holder token -> until when it counts as alive
        self._next_prune = 0.0  # time.monotonic() of the next deletion of incidents over
        self._lock = threading.Lock()  # one connection, used by the worker thread and tests
        self._db: sqlite3.Connection | None = None

    def _holder_token(self) -> str:
        """This process's holder of the store (taken at the first slot; again in a forked
        child), or the process's token when its lock file cannot be made (a lease then)."""
        holder = self._holder
        if holder is None or not holder.held:
            try:
                holder = self._holder = Holder(self._holders.parent)
            except OSError:
                return super()._holder_token()
        return HOLDER_MARK + holder.token

    def _forget_gone(self, states: list[State], now: float) -> None:
        """Drop from the buckets the slots whose holders are gone (their lock not held)."""
        for state in states:
            if isinstance(state, ledger.BucketState) and state.in_flight:
                flying = state.in_flight
                state.in_flight = {s: t for s, t in flying.items() if not self._gone(s, now)}

    incident_batch = 200  # one BEGIN ... COMMIT on the loop's thread for up to this many

    async def incidents(
        self,
        changes: Sequence[tuple[str, IncidentChange[T]]],
    ) -> list[T]:
        """As every coordinator's, and every :data:`PRUNE_EVERY` seconds (at the first call
        too) the rows of incidents that are over are deleted: a flood of distinct problems
        leaves no row behind for long. Without SQLite's JSON functions, nothing is deleted."""
        result = await super().incidents(changes)
        if time.monotonic() >= self._next_prune:
            self._next_prune = time.monotonic() + PRUNE_EVERY
            now = self.clock()
            with contextlib.suppress(sqlite3.Error, OSError):
                await self._atomic(lambda db: db.execute(_PRUNE, (now,)))
        return result

    def holder_gone(self, sender: str) -> bool:
        return self._gone(sender, time.monotonic())

    def _gone(self, slot: str, now: float) -> bool:
        if not slot.startswith(HOLDER_MARK):
            return False  # an earlier version's slot, or the process token: a lease
        token = slot[len(HOLDER_MARK) :].partition(".")[0]
        if self._alive.get(token, 0.0) > now:
            return False
        if not locked(self._holders / f"{token}{LOCK_SUFFIX}"):
            return True
        self._alive[token] = now + ALIVE_FOR
        return False

    @property
    def where(self) -> str:
        return f"the limits store {self.path}"

    def _connection(self) -> sqlite3.Connection:
        """The open connection, or a new one. Opening takes the database's lock (the switch
        to WAL, the schema): a busy error here is waited for by :meth:`_atomic` as a busy
        ``BEGIN`` is, from a fresh start (docs/architecture.md, "A busy backend is waited for")."""
        if self._db is None:
            private_directory(self.path.parent.parent)  # the store: only its owner's
            private_directory(self.path.parent)
            # isolation_level=None: we issue BEGIN IMMEDIATE ourselves. busy_timeout=0: the
            # waits are _atomic's, on the loop (SQLite skips its busy handler for the WAL
            # switch anyway, and its own sleeps lose to processes in a hurry).
            db = sqlite3.connect(
                self.path, isolation_level=None, timeout=0, check_same_thread=False
            )
            try:
                db.execute("PRAGMA journal_mode=WAL")
                private_sqlite_files(self.path)  # made with the umask: owner only
                # No fsync: a crashed process loses nothing (WAL), and after a power loss
                # Discord's windows (a minute at most) are over before anything starts again.
                db.execute("PRAGMA synchronous=OFF")
                db.executescript(_SCHEMA)
            except BaseException:
                db.close()
                raise
            self._db = db
        return self._db

    async def _atomic(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``work`` in one ``BEGIN IMMEDIATE`` transaction. While another process holds the
        write lock, wait on the event loop in short random steps (SQLite's own busy handler
        sleeps the thread, up to 100 ms a step, and loses to processes in a hurry), for up to
        :data:`_BUSY_TIMEOUT_MS`; then the ``database is locked`` error goes to the fallback."""
        deadline = time.monotonic() + _BUSY_TIMEOUT_MS / 1000
        attempt = 0
        while True:
            # Through the fork gate like every store transaction: a child forked mid-transaction
            # would inherit SQLite's record of this process's lock on the file and hang.
            with FORK_GATE.passage(), self._lock:
                try:
                    db = self._connection()
                    db.execute("BEGIN IMMEDIATE")
                except sqlite3.OperationalError as error:
                    if not _busy(error) or time.monotonic() >= deadline:
                        raise
                else:
                    try:
                        result = work(db)
                    except BaseException:
                        db.execute("ROLLBACK")
                        raise
                    db.execute("COMMIT")
                    return result
            attempt += 1
            await asyncio.sleep(jitter() * min(0.005, 0.0002 * attempt))

    async def _transact(
        self, keys: tuple[str, ...], change: Callable[[list[State], float], T]
    ) -> T:
        def work(db: sqlite3.Connection) -> T:
            marks = ",".join("?" * len(keys))
            rows = dict(db.execute(f"SELECT key, value FROM state WHERE key IN ({marks})", keys))  # noqa: S608 - only placeholders
            states = [ledger.decode(key, rows.get(key)) for key in keys]
            # As stored (a row that cannot be read is written anew), or, for a missing row, the
            # empty state: a decision that changed nothing writes nothing.
            before = [
                rows.get(key) or ledger.encode(state)
                for key, state in zip(keys, states, strict=True)
            ]
            self._forget_gone(states, time.monotonic())
            result = change(states, self.clock())
            changed = [
                (key, text)
                for key, state, old in zip(keys, states, before, strict=True)
                if (text := ledger.encode(state)) != old
            ]  # only what changed: a decision made on what was read writes nothing
            if changed:
                db.executemany("INSERT OR REPLACE INTO state (key, value) VALUES (?, ?)", changed)
            return result

        return await self._atomic(work)

    async def _read(self, keys: tuple[str, ...]) -> tuple[list[State], float]:
        """The states as they are: one ``SELECT`` in SQLite's own read transaction (WAL: it
        waits for no writer), no ``BEGIN IMMEDIATE``; a busy answer (the file being opened by
        another process) goes the transaction's way, which waits for it."""
        marks = ",".join("?" * len(keys))
        query = f"SELECT key, value FROM state WHERE key IN ({marks})"  # noqa: S608 - only "?"s
        try:
            with FORK_GATE.passage(), self._lock:
                rows = dict(self._connection().execute(query, keys))
        except sqlite3.OperationalError as error:
            if not _busy(error):
                raise
            return await super()._read(keys)  # the opening, or a recovery: waited for there
        states = [ledger.decode(key, rows.get(key)) for key in keys]
        return states, self.clock()

    async def aclose(self) -> None:
        self.close()
        if self._holder is not None:
            self._holder.release()  # no request of this coordinator is out any more

    def close(self) -> None:
        """Close the database connection; the next use opens it again."""
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None
