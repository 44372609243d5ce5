"""The durable store: dead letters and notification history on diskcache, JSON only.

Constructing a :class:`Store` does no I/O: the directory and the SQLite files are opened on
first use, once, under a lock (a forked child builds a Store it may never use).

Writes are buffered: letters, their removals, history entries and claim renewals wait in
memory for at most ``WRITE_DELAY`` seconds (or ``WRITE_BATCH`` items) and the store's one
thread (:class:`StoreThread`), started on the first buffered write or call, commits them in
short transactions. The same thread runs the delivery path's store calls (``thread.submit``),
applies retention at most once an hour and retries the disk after a failure. ``close()``,
``write_buffered()`` and ``sync()`` write inline and never start a thread.

:class:`Store` never raises into delivery. A transient error (another writer holds the lock)
is tried again a few times; any other failure switches the dead letters to memory, counted and
said once on stderr. The writer then tries the disk every ``RETRY_DISK_INTERVAL`` seconds and,
once it works, moves the letters kept in memory back to it and says so once.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from pathlib import Path

from ..deadletters import DeadLetter, MemoryDeadLetters
from ..notification import Notification, NotificationResult
from ..redaction import redact
from ..stats import DeliveryStats
from ..wording import counted, write_line
from ._damage import is_damage, set_aside
from ._paths import UnsafeStoreDirectory, default_store_path, private_directory
from ._resilient import ResilientDeadLetters
from ._write_buffer import WriteBuffer, retrying, transient
from ._writer import (
    CLEANUP_INTERVAL,
    RETRY_DISK_INTERVAL,
    STOP_WAIT,
    WRITE_BATCH,
    StoreThread,
)
from .durable_letters import DurableDeadLetters
from .history import History, make_entry


class Store:
    """History and dead letters at ``path``; dead letters fall back to memory if the disk
    fails, and go back to the disk when it works again."""

    def __init__(
        self,
        path: Path | str | None = None,
        *,
        retention_days: float = 30.0,
        max_bytes: int = 256 * 1024 * 1024,
        export_dir: Path | None = None,
        dead_letter_retention_days: float = 30.0,
        dead_letter_max_bytes: int = 256 * 1024 * 1024,
        stats: DeliveryStats | None = None,
    ) -> None:
        # No I/O here (see the module docstring): the fork hook builds one in every child.
        self.path = Path(path) if path is not None else default_store_path()
        self.retention_days = retention_days
        self.max_bytes = max_bytes
        self.export_dir = export_dir
        self.dead_letter_retention_days = dead_letter_retention_days
        self.dead_letter_max_bytes = dead_letter_max_bytes
        self.stats = stats if stats is not None else DeliveryStats()
        self.memory = MemoryDeadLetters(on_evict=lambda _: self.stats.add("dead_letters_evicted"))
        self.closed = False  # still usable after close; connections are then not kept
        self._history: History | None = None
        self._durable: DurableDeadLetters | None = None
        self._abandoned: list[History | DurableDeadLetters] = []  # closed by release_thread
        self._open_lock = threading.Lock()
        self._opened = False
        self._down_busy = False
        self._down = False  # dead letters in memory, history off, until the disk works again
        self._quiet_recovery = False  # down only while a damaged file is replaced: say nothing
        self._next_disk_try = 0.0
        self._buffer = WriteBuffer()
        self._removed_while_down: set[str] = set()
        # Taken by every write of what is buffered and by redelivery reads: both run on the
        # store thread, so it only keeps the writes run inline (close, sync, an operator's
        # flush) from interleaving with the thread's step.
        self._write_lock = threading.Lock()
        self._cleanup_lock = threading.Lock()
        self._last_cleanup = 0.0
        self.thread = StoreThread(self)
        """The one thread of this store: its writes, its upkeep and the calls handed to it."""
        self.dead_letters: ResilientDeadLetters = ResilientDeadLetters(self)
        # Told the ids of letters once on disk (the journal settles them then, not while they
        # are only buffered); called on the writer thread, or wherever a write runs inline.
        self.on_written: Callable[[list[str]], None] | None = None

    # -- opening, failing, recovering --------------------------------------------------------

    def _open(self) -> None:
        if self._opened:
            return
        with self._open_lock:
            if not self._opened:
                try:
                    self._connect()
                except Exception as exc:  # noqa: BLE001 - unusable store: memory, said once
                    if not self._recover_from_damage(exc):
                        self._fail(exc)
                self._opened = True

    def _recover_from_damage(self, exc: BaseException) -> bool:
        """A damaged file stopped the opening: set the damaged caches aside, open fresh ones
        and re-index the letters still readable; said once on stderr. False when the error
        is not damage or the store still cannot be opened."""
        if not is_damage(exc):
            return False
        try:
            moved = set_aside(self.path)
            if not moved:
                return False
            for part in (self._history, self._durable):
                if part is not None:
                    self._abandoned.append(part)  # closed by release_thread, never reused
            self._history = self._durable = None
            self._connect()
            assert self._durable is not None
            indexed = self._durable.reindex()
        except Exception:  # noqa: BLE001 - then it is an unusable store after all
            return False
        self.stats.add("store_errors")
        names = ", ".join(str(p) for p in moved)
        files = "a damaged store file" if len(moved) == 1 else f"{len(moved)} damaged store files"
        write_line(
            f"discord-logging: {files} set aside ({type(exc).__name__}: "
            f"{str(exc)[:100]}): {names}; fresh ones were opened and "
            f"{counted(indexed, 'kept letter')} re-indexed. Look at or delete the set-aside "
            "files.",
        )
        return True

    def _connect(self) -> None:
        """Open the caches (raises if they cannot be)."""
        private_directory(self.path)
        history = History(self.path)
        self._abandoned.append(history)  # until the dead letters opened too
        durable = DurableDeadLetters(self.path, history)
        self._abandoned.remove(history)
        self._history, self._durable = history, durable

    @property
    def history(self) -> History | None:
        """The history, or None while the store is in memory."""
        self._open()
        return None if self._down else self._history

    @property
    def durable(self) -> DurableDeadLetters | None:
        """The dead letters on disk, or None while the store is in memory."""
        self._open()
        return None if self._down else self._durable

    @property
    def down(self) -> bool:
        """Whether the disk failed and the writer should try it again."""
        return self._down

    @property
    def buffered(self) -> int:
        """Writes waiting for the writer."""
        return len(self._buffer)

    @property
    def degraded(self) -> bool:
        """True while the store is in memory (it could not be opened, or failed later)."""
        return self.durable is None

    @property
    def memory_only(self) -> int:
        """Dead letters that live only in this process's memory (lost if it ends now): those
        kept there after a failure, and those still waiting for the writer."""
        return len(self.memory) + self._buffer.new_letters()

    def _fail(self, exc: BaseException) -> None:
        if not self._down and self._recover_from_damage(exc):
            # What the failed write carried goes to memory meanwhile: the writer's next step
            # (at once) moves it to the fresh files, quietly; close tries too.
            self._down = self._down_busy = self._quiet_recovery = True
            self._next_disk_try = 0.0
            self.thread.wake()
            return
        self.stats.add("store_errors")
        if self._down:
            return
        self._down = True
        self._down_busy = transient(exc)  # busy, not broken: worth one more try at close
        self._next_disk_try = time.monotonic() + RETRY_DISK_INTERVAL
        if isinstance(exc, UnsafeStoreDirectory):  # its own words name the path and the fix
            said = f"{exc} Meanwhile dead letters are kept in memory and history is off."
        else:
            said = (
                f"the store at {self.path} cannot be used "
                f"({type(exc).__name__}: {redact(str(exc))[:200]}); dead letters are kept in "
                "memory and history is off until it works again (tried every "
                f"{RETRY_DISK_INTERVAL:.0f} s). Check the disk and DISCORD_STORE_PATH."
            )
        write_line(f"discord-logging: {said}")

    def _failed_read(self, exc: BaseException) -> None:
        """A read on the delivery path failed: busy is counted and tried on the next call;
        anything else switches to memory."""
        if transient(exc):
            self.stats.add("store_errors")
        else:
            self._fail(exc)

    def try_disk(self, now: float | None = None) -> bool:
        """From the writer (or a test): after a failure, at most every RETRY_DISK_INTERVAL
        seconds, check the disk; when it works, move the letters kept in memory back to it
        and say so once. True when the store is on disk (again)."""
        now = time.monotonic() if now is None else now
        if not self._down:
            return True
        if now < self._next_disk_try:
            return False
        self._next_disk_try = now + RETRY_DISK_INTERVAL
        with self._write_lock:
            letters = self.memory.letters()
            try:
                if self._durable is None:
                    self._connect()
                durable = self._durable
                assert durable is not None
                retrying(durable.probe)
                retrying(lambda: durable.write(letters, sorted(self._removed_while_down)))
            except Exception:  # noqa: BLE001 - still broken: try again later
                self.stats.add("store_errors")
                return False
            for letter in letters:
                self.memory.remove(letter.id)
            self._removed_while_down.clear()
            self._down = False
            self._written(letters)
        if self._quiet_recovery:  # a damaged file was replaced: that was said already
            self._quiet_recovery = False
            return True
        write_line(
            f"discord-logging: the store at {self.path} works again; "
            f"{counted(len(letters), 'dead letter')} kept in memory meanwhile "
            f"{'was' if len(letters) == 1 else 'were'} moved back to it.",
        )
        return True

    # -- buffered writes ---------------------------------------------------------------------

    def record(self, notification: Notification, result: NotificationResult, webhook: str) -> None:
        """Buffer ``result`` for the history (a Notifier listener); never raises."""
        if self._down:
            return
        self._buffered(self._buffer.record(make_entry(notification, result, webhook, time.time())))

    def keep(self, letter: DeadLetter) -> None:
        """Buffer ``letter`` for the disk (memory while the store is in memory)."""
        if self._down:
            self.memory.add(letter)
            self.thread.start()  # it tries the disk again later
            return
        self._buffered(self._buffer.add(letter))

    def forget(self, letter_id: str) -> None:
        """Buffer the removal of a letter (delivered) and drop it from memory."""
        self.memory.remove(letter_id)
        if self._down:
            self._removed_while_down.add(letter_id)
            return
        self._buffered(self._buffer.remove(letter_id))

    def renew(self, letter_ids: list[str]) -> None:
        """Buffer the renewal of this process's claims on ``letter_ids``."""
        if letter_ids and not self._down:
            self._buffer.renew(letter_ids)
            self._buffered(1)

    def confirm(self, letter_ids: list[str]) -> set[str]:
        """Renew this holder's claims on ``letter_ids`` now (on the store thread) and return
        those it lost: the lane drops them before it posts (fencing). Letters kept only in
        memory are this process's alone."""
        durable = self.durable
        if not letter_ids or durable is None:
            return set()
        return durable.confirm(letter_ids)

    def _buffered(self, waiting: int) -> None:
        if self.closed:  # a late write after close: inline, and no connection kept
            self.write_buffered()
            self.release_thread()
        elif self.thread.start():
            if waiting == 1 or waiting >= WRITE_BATCH:
                self.thread.wake()
        elif waiting >= WRITE_BATCH:  # no writer (interpreter shutdown): write here
            self.write_buffered()

    def write_buffered(self) -> None:
        """Write what is buffered now, inline (no thread); on failure letters go to memory."""
        with self._write_lock:
            batch = self._buffer.take()
            try:
                if not batch and not batch.renewals:
                    return
                added, removed = batch.added, batch.removed
                durable = self.durable
                if durable is None:
                    for letter in added:
                        self.memory.add(letter)
                    self._removed_while_down.update(removed)
                    return
                # The history first: a letter removed because it was delivered must already be
                # known as delivered, or a reader between the two writes (an operator's flush
                # from its list) could find it neither kept nor delivered, and post it again.
                history = self._history
                if batch.entries and history is not None:
                    try:
                        retrying(lambda: history.record_many(batch.entries))
                    except Exception as exc:  # noqa: BLE001
                        self._fail(exc)
                keep = self._buffer.claimed_now()
                try:
                    retrying(lambda: durable.write(added, removed, keep))
                except Exception as exc:  # noqa: BLE001
                    self._fail(exc)
                    for letter in added:
                        self.memory.add(letter)
                    self._removed_while_down.update(removed)
                    return
                # Handed out while buffered, now on disk or gone: no longer this buffer's.
                self._buffer.written([*(x.id for x in added if x.id in keep), *removed])
                self._written(added)
                if batch.renewals:
                    try:
                        retrying(lambda: durable.renew(sorted(batch.renewals)))
                    except Exception:  # noqa: BLE001 - a claim then lapses: counted
                        self.stats.add("store_errors")
            finally:
                self._buffer.done()

    def _written(self, letters: list[DeadLetter]) -> None:
        told = self.on_written
        if told is not None and letters:
            try:
                told([letter.id for letter in letters])
            except Exception:  # noqa: BLE001 - the journal must not stop the writer
                self.stats.add("journal_errors")

    def adopt(self, letters: list[DeadLetter]) -> int | None:
        """Write letters taken from a dead process's journal now, inline, each once (see
        :meth:`DurableDeadLetters.adopt`): how many were written, or None when the store
        cannot take them now (in memory, or the write failed)."""
        with self._write_lock:
            durable = self.durable
            try:
                return None if durable is None else retrying(lambda: durable.adopt(letters))
            except Exception as exc:  # noqa: BLE001
                self._failed_read(exc)
                return None

    def misplaced(self) -> bool:
        """Whether letters wait to be moved to the held range (the writer's work)."""
        return self._durable is not None and self._durable.misplaced > 0

    def maintain(self) -> None:
        """The writer's periodic work: retry the disk, move misplaced letters, retention."""
        if self._down:
            self.try_disk()
            return
        durable = self._durable
        if durable is not None and durable.misplaced:
            try:
                retrying(durable.move_misplaced)
            except Exception as exc:  # noqa: BLE001
                self._failed_read(exc)
        if time.time() - self._last_cleanup >= CLEANUP_INTERVAL:
            self.cleanup()

    def _stop_writer(self, timeout: float = STOP_WAIT) -> None:
        self.thread.stop(timeout)

    def release_thread(self) -> None:
        """Close the calling thread's SQLite connections (a thread must before it ends: Python
        3.13 warns about connections left for the garbage collector). Never raises."""
        for part in (self._history, self._durable, *self._abandoned):
            if part is not None:
                try:
                    part.close()
                except Exception:  # noqa: BLE001 - closing is best effort
                    self.stats.add("store_errors")

    # -- retention ---------------------------------------------------------------------------

    def cleanup(self, now: float | None = None) -> int:
        """Apply retention to the history and the dead letters, by age and by size; export
        what is deleted first when an export directory is set. Returns how many rows went.
        Run by the writer at most once an hour; never from close."""
        if not self._cleanup_lock.acquire(blocking=False):
            return 0
        try:
            now = time.time() if now is None else now
            self._last_cleanup = now
            history, durable = self.history, self.durable
            if history is None or durable is None:
                return 0
            stamp = time.strftime("%Y%m%d", time.gmtime(now))
            export = export_letters = None
            if self.export_dir is not None:
                export = self.export_dir / f"history-purged-{stamp}.jsonl"
                export_letters = self.export_dir / f"deadletters-purged-{stamp}.jsonl"
            removed = history.purge(before=now - self.retention_days * 86_400, export=export)
            removed += history.shrink(self.max_bytes, export=export)
            stop = lambda: self.thread.stopping  # noqa: E731 - close() interrupts a long purge
            before = now - self.dead_letter_retention_days * 86_400
            removed += durable.expire(before, export_letters, stop)
            removed += durable.shrink(self.dead_letter_max_bytes, export_letters, stop)
            return removed
        except Exception as exc:  # noqa: BLE001
            self._failed_read(exc)
            return 0
        finally:
            self._cleanup_lock.release()

    def close(self) -> None:
        """Stop the writer, write what is buffered (inline) and close this thread's
        connections (the store stays on disk). Starts no thread."""
        self._stop_writer()
        self.write_buffered()
        if self._down and (self._down_busy or self._removed_while_down or len(self.memory)):
            # Letters only in memory die with the process, and letters delivered while the
            # disk failed are still on it: the next run would post them again (rule 3). A
            # store that was busy (many processes on one disk) or full (a removal frees room)
            # often works again by now: one more try, however recent the last one was.
            self.try_disk(now=math.inf)
        if self._down and self._removed_while_down:
            write_line(
                f"discord-logging: {counted(len(self._removed_while_down), 'delivered letter')}"
                f" could not be removed from the store at {self.path}; the next run may post "
                f"{'it' if len(self._removed_while_down) == 1 else 'them'} again.",
            )
        self.closed = True
        self.release_thread()
        for part in (self._durable, *self._abandoned):
            if isinstance(part, DurableDeadLetters):
                part.release_holder()  # what it still claims is taken over (as uncertain)
