"""The SIGTERM watcher's two rules, on real sockets (docs/architecture.md, "A caught SIGTERM
is acted on"): it acts only on a SIGTERM this process caught, and only while the drain has
not begun and is still SIGTERM's handler. What it does to a blocked main thread is shown with
real signals in test_lifecycle_signals.py and test_pools.py."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from discord_logging.signal_watch import GRACE, _Watch

pytestmark = pytest.mark.skipif(
    not hasattr(socket, "SO_PASSCRED"), reason="the watcher needs SO_PASSCRED (Linux)"
)


@pytest.fixture
def watch() -> Iterator[_Watch]:
    """A watcher's sockets, not made the wakeup fd and without its thread."""
    made = _Watch(lambda: True, lambda: 0)
    try:
        yield made
    finally:
        made.close()


def received(watch: _Watch) -> tuple[bytes, list[tuple[int, int, bytes]]]:
    data, ancillary, _, _ = watch.reader.recvmsg(64, socket.CMSG_SPACE(12))
    return data, ancillary


def test_only_a_sigterm_this_process_caught_counts(watch: _Watch) -> None:
    """The byte CPython's C handler writes for SIGTERM here counts; SIGINT's does not, nor a
    SIGTERM byte another process wrote (a forked child signalled before its after-fork hook
    took the wakeup fd away: it would have made the parent drain and die)."""
    watch.writer.send(bytes([signal.SIGTERM]))
    assert watch.caught_here(*received(watch))
    watch.writer.send(bytes([signal.SIGINT]))
    assert not watch.caught_here(*received(watch))
    fd = watch.writer.fileno()
    subprocess.run(
        [sys.executable, "-c", f"import os; os.write({fd}, bytes([{int(signal.SIGTERM)}]))"],
        pass_fds=[fd],
        check=True,
        timeout=60,
    )
    assert not watch.caught_here(*received(watch))


def test_missed_only_by_a_main_thread_that_has_not_moved_nor_begun_the_drain() -> None:
    """After a caught SIGTERM: missed when within the grace the drain neither began nor was
    replaced and the main thread stayed where it was (blocked in C); not when the drain
    began (the byte's signal is being answered), nor when the main thread moved (it looks
    for signals itself: an in-process server's own handler answered it, then put the drain
    back), nor when the drain is no longer SIGTERM's handler (it put SIG_DFL back: a SIGTERM
    then would end the process in the middle of the drain). Bytes waiting are discarded."""
    starts, installed, at = [0], [True], ["blocked"]
    watch = _Watch(lambda: installed[0], lambda: starts[0], lambda: at[0])
    try:
        watch.writer.send(bytes([signal.SIGTERM]))
        began = time.monotonic()
        assert watch.missed(0, "blocked")
        assert time.monotonic() - began >= GRACE
        with pytest.raises(BlockingIOError):
            watch.reader.recv(64, socket.MSG_DONTWAIT)  # discarded
        assert not watch.missed(0, "where it was before")
        starts[0] = 1
        assert not watch.missed(0, "blocked")
        installed[0] = False
        assert not watch.missed(1, "blocked")
    finally:
        watch.close()


def test_the_main_threads_place_changes_when_it_runs() -> None:
    """The real position: this (main) thread's innermost frame and instruction, which differ
    between two calls made from two places of the same frame."""
    watch = _Watch(lambda: True, lambda: 0)
    try:
        first = watch.position()
        second = watch.position()
        assert first is not None
        assert first != second  # two calls: two instructions of this frame
    finally:
        watch.close()


def test_no_watcher_where_the_wakeup_fd_has_an_owner() -> None:
    """An owner of the wakeup fd (asyncio's loop, trio) keeps it: nothing is started, and
    its fd is put back. Run in a subprocess: this one may have a watcher already."""
    script = """
import signal, socket
from discord_logging import signal_watch
r, w = socket.socketpair()
w.setblocking(False)
signal.set_wakeup_fd(w.fileno())
assert not signal_watch.start(lambda: True, lambda: 0)
assert signal_watch._WATCH is None
assert signal.set_wakeup_fd(-1) == w.fileno()
print("ok")
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert (done.returncode, done.stdout) == (0, "ok\n"), done.stderr
