"""The durable store: dead letters and notification history on diskcache, JSON only.

:class:`Store` never raises into delivery: if the store cannot be opened or fails later (a
read-only or full disk, a corrupt file), it falls back to memory, counts it, and says so once
on stderr.

Writes are batched: letters and history entries wait in memory for at most
``WRITE_DELAY`` seconds (or ``WRITE_BATCH`` items) and go to disk in one transaction per
cache, so a burst of thousands of dead letters costs a few commits, not thousands. Every read,
``sync()``, flush and close writes what is waiting first; only a SIGKILL can lose it.
"""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path
from typing import Any, Final

import platformdirs

from ..deadletters import DeadLetter, DeadLetterSink, MemoryDeadLetters
from ..notification import Notification, NotificationResult
from ..redaction import redact
from ..stats import DeliveryStats
from ._disk import private_directory
from .deadletters import DurableDeadLetters
from .history import History, make_entry

__all__ = ["DurableDeadLetters", "History", "Store", "default_store_path"]

CLEANUP_INTERVAL: Final = 3600.0
WRITE_DELAY: Final = 0.2
WRITE_BATCH: Final = 500


def default_store_path() -> Path:
    """The per-user cache directory used when DISCORD_STORE_PATH is not set."""
    return Path(platformdirs.user_cache_dir("discord-logging")) / "store"


class Store:
    """History and dead letters at ``path``; both fall back to memory if the disk fails."""

    def __init__(
        self,
        path: Path | str | None = None,
        *,
        retention_days: float = 30.0,
        max_bytes: int = 256 * 1024 * 1024,
        export_dir: Path | None = None,
        stats: DeliveryStats | None = None,
    ) -> None:
        self.path = Path(path) if path is not None else default_store_path()
        self.retention_days = retention_days
        self.max_bytes = max_bytes
        self.export_dir = export_dir
        self.stats = stats if stats is not None else DeliveryStats()
        self._warned = False
        self.history: History | None = None
        self.durable: DurableDeadLetters | None = None
        self._abandoned: list[History | DurableDeadLetters] = []
        self.closed = False  # still readable after close; connections are then not kept
        self.memory = MemoryDeadLetters()
        try:
            private_directory(self.path)
            self.history = History(self.path)
            self.durable = DurableDeadLetters(self.path, self.history)
        except Exception as exc:  # noqa: BLE001 - unusable store: memory, said once
            self._fail(exc)
        self.dead_letters: DeadLetterSink = ResilientDeadLetters(self)
        self._cleanup_lock = threading.Lock()
        self._last_cleanup = 0.0
        self._write_lock = threading.Lock()
        self._pending_letters: list[DeadLetter] = []
        self._pending_entries: list[dict[str, Any]] = []
        self._writer: threading.Timer | None = None
        self._cleanup_thread: threading.Thread | None = None

    @property
    def degraded(self) -> bool:
        """True once the store fell back to memory."""
        return self.durable is None

    def _fail(self, exc: BaseException) -> None:
        self.stats.add("store_errors")
        # Kept so that close() and release_thread() still close their connections.
        self._abandoned += [part for part in (self.history, self.durable) if part is not None]
        self.history = None
        self.durable = None
        if not self._warned:
            self._warned = True
            print(
                f"discord-logging: the store at {self.path} cannot be used "
                f"({type(exc).__name__}: {redact(str(exc))[:200]}); dead letters are kept in "
                "memory and history is off until restart. Check the disk and "
                "DISCORD_STORE_PATH.",
                file=sys.stderr,
            )

    # -- listener for the notifier -----------------------------------------------------------

    def record(self, notification: Notification, result: NotificationResult, webhook: str) -> None:
        """Write ``result`` to the history (a Notifier listener); never raises."""
        if self.history is None:
            return
        self._pending_entries.append(make_entry(notification, result, webhook, time.time()))
        self._schedule_write()
        self.maybe_cleanup()

    # -- batched writes ----------------------------------------------------------------------

    def _schedule_write(self) -> None:
        if len(self._pending_entries) + len(self._pending_letters) >= WRITE_BATCH:
            self.write_pending()
        elif self._writer is None:
            self._writer = threading.Timer(WRITE_DELAY, self._write_from_timer)
            self._writer.daemon = True
            self._writer.start()

    def _write_from_timer(self) -> None:
        self.write_pending()
        self.closed = True
        self.release_thread()

    def release_thread(self) -> None:
        """Close the calling thread's SQLite connections (a thread must before it ends: Python
        3.13 warns about connections left for the garbage collector). Never raises."""
        for part in (self.history, self.durable, *self._abandoned):
            if part is not None:
                try:
                    part.close()
                except Exception:  # noqa: BLE001 - closing is best effort
                    self.stats.add("store_errors")

    def write_pending(self) -> None:
        """Write buffered letters and history entries now; on failure keep letters in memory."""
        with self._write_lock:
            writer, self._writer = self._writer, None
            if writer is not None:
                writer.cancel()
            letters, self._pending_letters = self._pending_letters, []
            entries, self._pending_entries = self._pending_entries, []
            if letters:
                durable = self.durable
                try:
                    if durable is None:
                        raise RuntimeError("store unavailable")
                    durable.add_many(letters)
                except Exception as exc:  # noqa: BLE001
                    if durable is not None:
                        self._fail(exc)
                    for letter in letters:
                        self.memory.add(letter)
            history = self.history
            if entries and history is not None:
                try:
                    history.record_many(entries)
                except Exception as exc:  # noqa: BLE001
                    self._fail(exc)

    # -- retention ---------------------------------------------------------------------------

    def maybe_cleanup(self, now: float | None = None) -> None:
        """Start retention in a background thread at most once an hour; never blocks."""
        now = time.time() if now is None else now
        if now - self._last_cleanup < CLEANUP_INTERVAL or self.history is None:
            return
        self._last_cleanup = now
        self._cleanup_thread = threading.Thread(
            target=self.cleanup, name="discord-logging-cleanup", daemon=True
        )
        self._cleanup_thread.start()

    def cleanup(self, now: float | None = None) -> int:
        """Apply retention by age and size; export purged entries first when configured."""
        history = self.history
        if history is None or not self._cleanup_lock.acquire(blocking=False):
            return 0
        try:
            now = time.time() if now is None else now
            export = None
            if self.export_dir is not None:
                stamp = time.strftime("%Y%m%d", time.gmtime(now))
                export = self.export_dir / f"history-purged-{stamp}.jsonl"
            removed = history.purge(before=now - self.retention_days * 86_400, export=export)
            removed += history.shrink(self.max_bytes, export=export)
            return removed
        except Exception as exc:  # noqa: BLE001
            self._fail(exc)
            return 0
        finally:
            self._cleanup_lock.release()
            if threading.current_thread() is self._cleanup_thread:
                self.release_thread()

    def close(self) -> None:
        """Write what is buffered and close the caches (the store stays on disk)."""
        cleanup = self._cleanup_thread
        if cleanup is not None and cleanup is not threading.current_thread():
            cleanup.join(30.0)
        self.write_pending()
        self.closed = True
        self.release_thread()


class ResilientDeadLetters(DeadLetterSink):
    """The store's sink: durable (batched) while the disk works, memory after a failure."""

    def __init__(self, store: Store) -> None:
        self._store = store

    @property
    def durable(self) -> bool:  # type: ignore[override]
        return self._store.durable is not None

    def add(self, letter: DeadLetter) -> None:
        store = self._store
        if store.durable is None:
            store.memory.add(letter)
            return
        store._pending_letters.append(letter)
        store._schedule_write()

    def sync(self) -> None:
        self._store.write_pending()

    def _done(self) -> None:
        """After the store was closed, a late read must not leave a connection open."""
        if self._store.closed:
            self._store.release_thread()

    def retryable(self, webhook: str, limit: int) -> list[DeadLetter]:
        self.sync()
        durable = self._store.durable
        if durable is not None:
            try:
                return durable.retryable(webhook, limit)
            except Exception as exc:  # noqa: BLE001
                self._store._fail(exc)
            finally:
                self._done()
        return self._store.memory.retryable(webhook, limit)

    def remove(self, letter_id: str) -> None:
        self.sync()
        durable = self._store.durable
        if durable is not None:
            try:
                durable.remove(letter_id)
            except Exception as exc:  # noqa: BLE001
                self._store._fail(exc)
            finally:
                self._done()
        self._store.memory.remove(letter_id)

    def letters(self) -> list[DeadLetter]:
        self.sync()
        found = self._store.memory.letters()
        durable = self._store.durable
        if durable is not None:
            try:
                found = durable.letters() + found
            except Exception as exc:  # noqa: BLE001
                self._store._fail(exc)
            finally:
                self._done()
        return found

    def __len__(self) -> int:
        store = self._store
        count = len(store.memory) + len(store._pending_letters)
        durable = store.durable
        if durable is not None:
            try:
                count += len(durable)
            except Exception as exc:  # noqa: BLE001
                store._fail(exc)
            finally:
                self._done()
        return count
