"""The store's one thread (docs/architecture.md, "Fewer moving parts"): a daemon thread per
store that owns the SQLite work the delivery path does not do inline. It commits what is
buffered after at most ``WRITE_DELAY`` seconds (or ``WRITE_BATCH`` items), runs the calls
handed to it (redelivery reads, claim confirmations, a dead journal's chunks) one at a time
between two writes, does the store's upkeep, and ends once idle for ``IDLE_END`` seconds (a
process at rest keeps none)."""

from __future__ import annotations

import concurrent.futures
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final, TypeVar

from ..fork_gate import FORK_GATE, nothing_parked, park_between_calls

if TYPE_CHECKING:
    from ._store import Store

CLEANUP_INTERVAL: Final = 3600.0
RETRY_DISK_INTERVAL: Final = 30.0
WRITE_DELAY: Final = 0.2
WRITE_BATCH: Final = 500
STOP_WAIT: Final = 30.0  # seconds close() waits at most for the thread's current step
IDLE_END: Final = 2.0  # seconds without work after which the thread ends

T = TypeVar("T")
_WRITE: Final = object()  # the next step: write what is buffered, then upkeep


class StoreThread:
    """Starts, feeds, wakes, parks and stops the one thread of a :class:`Store`."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._wake = threading.Condition()
        self._calls: deque[Callable[[], None]] = deque()
        self._thread: threading.Thread | None = None
        self._no_thread = False  # no thread could be started (interpreter shutdown)
        self._write_at: float | None = None  # when the gathering burst is written
        self._forks_at_start = 0  # FORK_GATE.forks when the running thread started
        self.stopping = False

    def start(self) -> bool:
        """Have the thread running (never from close); False if there can be none. Decided
        under the lock the thread ends under: a thread that is ending has set ``_thread`` to
        None first, so work handed over meanwhile starts the next one."""
        if self._no_thread or self.stopping or self._store.closed:
            return False
        with self._wake:
            if self._thread is None or not self._thread.is_alive():
                thread = threading.Thread(
                    target=self._run, name="discord-logging-store", daemon=True
                )
                try:
                    thread.start()
                except RuntimeError:  # "can't create new thread at interpreter shutdown"
                    self._no_thread = True
                    return False
                self._thread = thread
        return True

    def submit(self, fn: Callable[..., T], *args: Any) -> concurrent.futures.Future[T]:
        """``fn(*args)`` on the store thread, after the step it is in; run here at once when
        there can be no thread (interpreter shutdown, the store closed)."""
        future: concurrent.futures.Future[T] = concurrent.futures.Future()

        def call() -> None:
            if not future.set_running_or_notify_cancel():
                return
            try:
                future.set_result(fn(*args))
            except BaseException as exc:  # noqa: BLE001 - handed to whoever awaits it
                future.set_exception(exc)

        with self._wake:
            if self.start():
                self._calls.append(call)
                self._wake.notify()
                return future
        call()
        return future

    def wake(self) -> None:
        """Look at the work now (the first buffered write, a full batch, a disk to retry)."""
        with self._wake:
            self._wake.notify()

    def park(self, timeout: float) -> Callable[[], None]:
        """Hold the thread between two steps until the returned function is called (at most
        ``timeout`` seconds each way): before a fork, so that it is not inside a SQLite call.
        A thread that has ended has nothing to hold."""
        thread = self._thread
        if thread is None or not thread.is_alive() or thread is threading.current_thread():
            return nothing_parked
        return park_between_calls(self.submit, timeout)

    def stop(self, timeout: float = STOP_WAIT) -> None:
        """Stop the thread and wait (at most ``timeout``) for the step it is in."""
        with self._wake:
            self.stopping = True
            self._wake.notify_all()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(max(0.0, timeout))

    def _run(self) -> None:
        store = self._store
        self._forks_at_start = FORK_GATE.forks
        try:
            while True:
                with self._wake:
                    step = self._next_step(store)
                if step is None:
                    break
                if step is _WRITE:
                    store.write_buffered()
                    store.maintain()
                else:
                    step()  # type: ignore[operator]
        except Exception:  # noqa: BLE001 - the thread must not die noisily; close writes
            store.stats.add("store_errors")
        finally:
            with self._wake:  # calls handed over as it stopped: run, never left unanswered
                if self._thread is threading.current_thread():
                    self._thread = None
                left = list(self._calls)
                self._calls.clear()
            for call in left:
                call()
            store.release_thread()  # this thread's SQLite connections, before it ends

    def _next_step(self, store: Store) -> object | None:
        """Under the lock: ``_WRITE`` when the buffer is due (or upkeep is), else the next
        call, or None to end (stopping, or idle for ``IDLE_END``). A call never waits for a
        burst to gather, and calls never hold back a write that is due."""
        while not self.stopping:
            waiting = store.buffered
            if waiting:
                now = time.monotonic()
                if self._write_at is None:
                    self._write_at = now + WRITE_DELAY  # let a burst gather
                if waiting >= WRITE_BATCH or now >= self._write_at:
                    self._write_at = None
                    return _WRITE
            if self._calls:
                return self._calls.popleft()
            if waiting:
                self._wake.wait(self._write_at - now)  # type: ignore[operator]
            elif store.misplaced():
                return _WRITE
            elif store.down:  # upkeep tries the disk again (at most every 30 s)
                self._wake.wait(RETRY_DISK_INTERVAL)
                if not self._calls and not store.buffered:
                    return _WRITE
            elif not self._wake.wait(IDLE_END) and self._idle(store) and self._may_end():
                self._thread = None  # ends: the next write or call starts one
                return None
        return None

    def _may_end(self) -> bool:
        """Not after this process forked while the thread had its connections open: a child
        shares SQLite's in-memory state of those files (their locks, the WAL index), and
        closing the parent's last connection to a WAL file then lets SQLite take the parent
        for its last user and remove the WAL under the child, which finds "file is not a
        database" (fleet.py's fork rows). Such a thread stays until the store closes."""
        return FORK_GATE.forks == self._forks_at_start

    def _idle(self, store: Store) -> bool:
        return not (self._calls or store.buffered or store.misplaced() or store.down)
