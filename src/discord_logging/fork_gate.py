"""The fork gate: what a fork waits for before it copies the process, so that a child never
inherits SQLite's locks held mid-transaction by a parent thread (docs/architecture.md,
"Fork"). The store's and the limits' transactions pass through it; the fork hooks in
:mod:`discord_logging.lifecycle` close and reopen it."""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Iterator
from typing import Final


class ForkGate:
    """What a fork waits for: SQLite transactions in progress on this process's threads.

    A child forked while a parent thread is inside a transaction inherits SQLite's in-memory
    record of that thread's locks on the file (SQLite shares it between the connections of a
    process) and its mutexes; the child's own connection to the store then finds the file
    locked for good. Every store transaction passes through the gate; before a fork the gate
    closes (new transactions wait) and waits, bounded, for those in progress. A thread
    already inside passes again freely (transactions nest: index, then letters)."""

    def __init__(self) -> None:
        self.forks = 0  # forks of this process so far (the store thread reads it)
        self._reset()

    def _reset(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._active = 0
        self._closed = False
        self._depth = threading.local()

    @contextlib.contextmanager
    def passage(self) -> Iterator[None]:
        depth: int = getattr(self._depth, "n", 0)
        if depth == 0:
            with self._cond:
                # Bounded: a fork that never reopens (it cannot, but) must not stop the store.
                self._cond.wait_for(lambda: not self._closed, GATE_WAIT)
                self._active += 1
        self._depth.n = depth + 1
        try:
            yield
        finally:
            self._depth.n = depth
            if depth == 0:
                with self._cond:
                    self._active -= 1
                    self._cond.notify_all()

    def close(self, timeout: float) -> bool:
        """Stop new transactions and wait (at most ``timeout``) for those in progress; True
        when none is left. The calling thread's own transaction, if any, is not waited for."""
        mine = 1 if getattr(self._depth, "n", 0) else 0
        with self._cond:
            self._closed = True
            return self._cond.wait_for(lambda: self._active <= mine, timeout)

    def reopen(self) -> None:
        with self._cond:
            self._closed = False
            self._cond.notify_all()

    def count_fork(self) -> None:
        """Before every fork of this process (installed at import, handler or not)."""
        self.forks += 1

    def reset_in_child(self) -> None:
        """The child has only the forking thread: nothing is in progress there."""
        self._reset()


def nothing_parked() -> None:
    """What a park that parked nothing returns: nothing to resume."""


def park_between_calls(
    schedule: Callable[[Callable[[], None]], object], timeout: float
) -> Callable[[], None]:
    """Have ``schedule`` run a hold as the next call of another thread (a loop's callback, the
    store thread's next step) and wait until it runs: that thread is then between two calls,
    and stays there until the returned function is called (at most ``timeout`` seconds each
    way). A hold run inline on the calling thread does not wait. May raise what
    ``schedule`` raises."""
    parked, resume = threading.Event(), threading.Event()
    caller = threading.current_thread()

    def hold() -> None:
        parked.set()
        if threading.current_thread() is not caller:
            resume.wait(timeout)

    schedule(hold)
    if not parked.wait(timeout):
        resume.set()  # too late to matter: it must not hold after the fork
    return resume.set


FORK_GATE: Final = ForkGate()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=FORK_GATE.count_fork)
GATE_WAIT: Final = 2.0  # seconds a transaction waits at most for a fork in progress
FORK_WAIT: Final = 0.25  # seconds a fork waits at most for transactions in progress
