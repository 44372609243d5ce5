"""The store's writer thread: one daemon thread per store, started on a buffered write, that
commits what is buffered after at most ``WRITE_DELAY`` seconds (or ``WRITE_BATCH`` items),
does the store's upkeep between writes, and ends once idle for ``IDLE_END`` seconds (a
process at rest keeps no writer; docs/architecture.md, "The store")."""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from ._store import Store

CLEANUP_INTERVAL: Final = 3600.0
RETRY_DISK_INTERVAL: Final = 30.0
WRITE_DELAY: Final = 0.2
WRITE_BATCH: Final = 500
STOP_WAIT: Final = 30.0  # seconds close() waits for the writer to finish its current step
IDLE_END: Final = 2.0  # seconds without work after which the writer ends


class StoreWriter:
    """Starts, wakes and stops the thread that writes a :class:`Store`'s buffer."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None
        self._no_thread = False  # the writer could not be started (interpreter shutdown)
        self.stopping = False

    def start(self) -> bool:
        """Have a writer running (never from close); False if there can be none. Decided
        under the lock the writer ends under: a writer that is ending has set ``_thread`` to
        None first, so a write buffered meanwhile starts the next one."""
        if self._no_thread or self.stopping or self._store.closed:
            return False
        with self._wake:
            if self._thread is None or not self._thread.is_alive():
                thread = threading.Thread(
                    target=self._write_forever, name="discord-logging-store", daemon=True
                )
                try:
                    thread.start()
                except RuntimeError:  # "can't create new thread at interpreter shutdown"
                    self._no_thread = True
                    return False
                self._thread = thread
        return True

    def wake(self) -> None:
        """Write now rather than after the gathering delay."""
        with self._wake:
            self._wake.notify()

    def stop(self) -> None:
        """Stop the thread and wait (bounded) for the step it is in."""
        with self._wake:
            self.stopping = True
            self._wake.notify_all()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(STOP_WAIT)

    def _write_forever(self) -> None:
        store = self._store
        try:
            while not self.stopping:
                with self._wake:
                    if self._idle(store):
                        self._wake.wait(RETRY_DISK_INTERVAL if store.down else IDLE_END)
                        if self._idle(store) and not store.down:
                            self._thread = None  # ends: the next buffered write starts one
                            return
                    gather = time.monotonic() + WRITE_DELAY  # let a burst gather
                    while (
                        store.buffered
                        and not self.stopping
                        and store.buffered < WRITE_BATCH
                        and (left := gather - time.monotonic()) > 0
                    ):
                        self._wake.wait(left)
                if self.stopping:
                    break
                store.write_buffered()
                store.maintain()
        except Exception:  # noqa: BLE001 - the writer must not die noisily; close writes
            store.stats.add("store_errors")
        finally:
            store.release_thread()  # this thread's SQLite connections, before it ends

    def _idle(self, store: Store) -> bool:
        return not store.buffered and not self.stopping and not store.misplaced()
