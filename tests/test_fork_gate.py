"""What a fork waits for: store transactions in progress (the fork gate) and the store
thread's current step (its park)."""

from __future__ import annotations

import concurrent.futures
import threading
from pathlib import Path

import pytest
from waiting import FAILSAFE

from discord_logging.fork_gate import ForkGate
from discord_logging.store import Store


def test_close_waits_for_a_transaction_in_progress_and_holds_new_ones() -> None:
    gate = ForkGate()
    inside, leave, second_in = threading.Event(), threading.Event(), threading.Event()

    def transaction() -> None:
        with gate.passage(), gate.passage():  # nested: the index, then the letters
            inside.set()
            leave.wait(FAILSAFE)

    def later() -> None:
        with gate.passage():
            second_in.set()

    first = threading.Thread(target=transaction)
    first.start()
    assert inside.wait(FAILSAFE)
    assert gate.close(0.05) is False  # still inside: the fork would go ahead unprotected
    leave.set()
    first.join(FAILSAFE)
    assert gate.close(1.0) is True
    second = threading.Thread(target=later)
    second.start()
    assert not second_in.wait(0.05)  # the gate is closed: a new transaction waits
    gate.reopen()
    assert second_in.wait(FAILSAFE)
    second.join(FAILSAFE)


def test_a_thread_inside_passes_again_and_its_own_transaction_is_not_waited_for() -> None:
    gate = ForkGate()
    with gate.passage():
        assert gate.close(0.05) is True  # forking from inside a transaction
        with gate.passage():  # nested entry while closed does not wait
            pass
    gate.reopen()


def test_reset_in_child_forgets_a_closed_gate() -> None:
    gate = ForkGate()
    gate.close(0.01)
    gate.reset_in_child()
    entered = threading.Event()

    def enter() -> None:
        with gate.passage():
            entered.set()

    thread = threading.Thread(target=enter)
    thread.start()
    assert entered.wait(1)
    thread.join(FAILSAFE)


def test_park_holds_the_store_thread_between_calls(tmp_path: Path) -> None:
    store = Store(tmp_path / "store")
    pool = store.thread
    try:
        assert pool.park(0.05)() is None  # never started: nothing to hold, at once
        started, release = threading.Event(), threading.Event()

        def call() -> str:
            started.set()
            release.wait(FAILSAFE)
            return "done"

        running = pool.submit(call)
        assert started.wait(FAILSAFE)
        waiting = threading.Thread(target=lambda: setattr(waiting, "resume", pool.park(5)))
        waiting.start()
        assert not running.done()
        release.set()  # the hold runs after the current call
        waiting.join(FAILSAFE)
        queued = pool.submit(lambda: "after")
        assert running.result(1) == "done"
        resume = waiting.resume  # type: ignore[attr-defined]
        with pytest.raises(concurrent.futures.TimeoutError):  # parked: it has not run
            queued.result(0.05)
        resume()
        assert queued.result(FAILSAFE) == "after"
    finally:
        store.close()


# The holder thread is alive at the fork on purpose: Python 3.12+ warns about exactly that.
@pytest.mark.slow  # a real process
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_a_child_never_inherits_the_store_connection_lock_held() -> None:
    """A parent thread holding the store's connection-list lock at a fork (it takes it outside
    the fork gate, for a moment, on each new connection) leaves the child a fresh lock: the
    child's first store call does not wait forever."""
    import os

    from discord_logging.store import _disk

    taken, release = threading.Event(), threading.Event()

    def hold() -> None:
        with _disk._CONNECTIONS_LOCK:
            taken.set()
            release.wait(FAILSAFE)

    holder = threading.Thread(target=hold)
    holder.start()
    taken.wait(FAILSAFE)
    try:
        pid = os.fork()
        if pid == 0:  # the child: only this thread exists
            free = _disk._CONNECTIONS_LOCK.acquire(timeout=1)
            os._exit(0 if free else 1)
        _, status = os.waitpid(pid, 0)
    finally:
        release.set()
        holder.join(FAILSAFE)
    assert os.waitstatus_to_exitcode(status) == 0


def test_lookups_that_never_answer_hold_at_most_the_limit_of_threads() -> None:
    """Lookups run on a thread each; with ``limit`` of them stuck (a resolver that never
    answers), the next fails at once with an OSError instead of starting one more thread,
    and a slot is free again once a lookup returns."""
    from discord_logging.delivery.threads import LookupThreads

    lookups = LookupThreads("test-lookup", limit=2)
    answer = threading.Event()
    stuck = [lookups.submit(answer.wait, FAILSAFE) for _ in range(2)]
    refused = lookups.submit(answer.wait, FAILSAFE)
    with pytest.raises(OSError, match="not being answered"):
        refused.result(FAILSAFE)
    answer.set()
    assert [f.result(FAILSAFE) for f in stuck] == [True, True]
    assert lookups.submit(lambda: "answered").result(FAILSAFE) == "answered"
