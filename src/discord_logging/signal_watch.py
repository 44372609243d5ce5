"""The SIGTERM drain's watcher: a SIGTERM this process caught is acted on, whatever its main
thread waits in (docs/architecture.md, "A caught SIGTERM is acted on").

CPython's C handler only notes a signal; the main thread runs the Python handler (the drain)
when it next looks. A main thread that took SIGTERM just before it blocked in ``sem_wait`` (a
Pool worker on its task lock, which the terminating parent holds until the worker dies) never
looks. CPython writes each caught signal's number to its wakeup fd; the watcher reads it and,
when the drain has not begun :data:`GRACE` seconds later, sends SIGTERM again to the main
thread alone: the wait returns EINTR and CPython runs the drain.

Only in multiprocessing children (:func:`install`), where a missed SIGTERM blocks for good;
SIGTERM is held across forks in every process with the drain. Linux only: the wakeup fd is a
datagram socket with ``SO_PASSCRED``, so each byte carries the pid that wrote it, and a forked
child's byte is never taken for this process's own signal. Elsewhere nothing is watched.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import struct
import sys
import threading
import time
from collections.abc import Callable
from typing import Final

GRACE: Final = 0.25  # seconds the drain has to begin after a caught SIGTERM
_STEP: Final = 0.01  # how often the watcher looks during the grace
_CREDENTIALS: Final = struct.Struct("3i")  # struct ucred: pid, uid, gid


class _Watch:
    """One process's watcher: its socket pair (the write end is the wakeup fd) and thread."""

    def __init__(
        self,
        is_drain: Callable[[], bool],
        starts: Callable[[], int],
        position: Callable[[], object] | None = None,
    ) -> None:
        self.is_drain = is_drain  # the drain is still SIGTERM's handler
        self.starts = starts  # how many times the drain has begun
        self.position = position or _main_position  # where the main thread is
        self.pid = os.getpid()
        self.reader, self.writer = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.reader.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        self.writer.setblocking(False)  # CPython's C handler must never block on it

    def take_wakeup_fd(self) -> bool:
        """Make the writer CPython's wakeup fd, unless another owner has it (then left)."""
        old = signal.set_wakeup_fd(self.writer.fileno(), warn_on_full_buffer=False)
        if old != -1:
            signal.set_wakeup_fd(old)  # its owner's (its warning flag cannot be read back)
            return False
        return True

    def give_back(self) -> bool:
        """Unset the wakeup fd if it is still ours (main thread only). True if it was."""
        old = signal.set_wakeup_fd(-1)
        if old != self.writer.fileno():
            signal.set_wakeup_fd(old)  # another owner's: put back
            return False
        return True

    def close(self) -> None:
        self.reader.close()
        self.writer.close()

    def run(self) -> None:
        size = socket.CMSG_SPACE(_CREDENTIALS.size)
        while True:
            seen = self.starts()  # before the byte can come: its drain counts as a start
            try:
                data, ancillary, _, _ = self.reader.recvmsg(64, size)
            except OSError:
                return  # closed
            # Never a traceback from a thread of ours (an interpreter shutting down, say).
            with contextlib.suppress(Exception):
                if self.caught_here(data, ancillary) and self.missed(seen, self.position()):
                    signal.pthread_kill(_main_ident(), signal.SIGTERM)

    def caught_here(self, data: bytes, ancillary: list[tuple[int, int, bytes]]) -> bool:
        """A SIGTERM this process caught: not another signal, nor a byte a forked child
        wrote before its after-fork hook took the wakeup fd away."""
        return signal.SIGTERM in data and _sender(ancillary) == self.pid

    def missed(self, seen: int, where: object) -> bool:
        """After a caught SIGTERM: True when within :data:`GRACE` the drain has not begun
        (its starts still ``seen``), the main thread has not moved from ``where`` (blocked in
        C: one that moves looks for signals itself, and ran whatever handler was there), and
        the drain is SIGTERM's handler. Signals caught meanwhile are discarded: the drain that
        answers this one answers them."""
        deadline = time.monotonic() + GRACE
        while self.starts() == seen and time.monotonic() < deadline:
            time.sleep(_STEP)
        with contextlib.suppress(OSError):
            while self.reader.recv(64, socket.MSG_DONTWAIT):
                pass
        return self.starts() == seen and self.position() == where and self.is_drain()


def _sender(ancillary: list[tuple[int, int, bytes]]) -> int | None:
    for level, kind, payload in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
            if len(payload) < _CREDENTIALS.size:
                return None
            pid: int = _CREDENTIALS.unpack_from(payload)[0]
            return pid
    return None


def _main_position() -> object:
    """The main thread's innermost frame and instruction: unchanged while it is blocked in C."""
    frame = sys._current_frames().get(_main_ident())
    # The frame itself, not its id: held, its address cannot pass to a new frame meanwhile.
    return None if frame is None else (frame, frame.f_lasti)


def _main_ident() -> int:
    ident = threading.main_thread().ident
    assert ident is not None  # the main thread has started: it is running us
    return ident


_WATCH: _Watch | None = None
_WANTED: tuple[Callable[[], bool], Callable[[], int]] | None = None  # a child may watch again


class _ChildHook:
    """What ``multiprocessing.util.register_after_fork`` holds (weakly): this module's."""


_CHILD_HOOK = _ChildHook()
_HOOKED = False


def install(is_drain: Callable[[], bool], starts: Callable[[], int]) -> None:
    """On the main thread, right after the drain became SIGTERM's handler: a multiprocessing
    child watches now (its target made the handler) or from its ``_bootstrap`` (spawn and
    forkserver import the main module before it), and so will this process's children. A
    main process does not: only a multiprocessing child is left blocked for good by a missed
    SIGTERM (its parent holds the lock it waits on until it dies), and elsewhere an
    application may answer a SIGTERM with a handler of its own and then put the drain back,
    which the watcher cannot tell from a miss once the main thread has blocked again."""
    global _WANTED
    _WANTED = (is_drain, starts)
    mp = sys.modules.get("multiprocessing")
    if mp is not None and mp.parent_process() is not None:  # a child, past its _bootstrap
        start(is_drain, starts)
    _hook_children()


def start(is_drain: Callable[[], bool], starts: Callable[[], int]) -> bool:
    """Take the wakeup fd (when nobody has it) and start the watcher. True if watching."""
    global _WATCH
    if _WATCH is not None or not hasattr(socket, "SO_PASSCRED"):
        return _WATCH is not None
    try:
        watch = _Watch(is_drain, starts)
    except OSError:
        return False
    try:
        if not watch.take_wakeup_fd():
            watch.close()
            return False
    except (ValueError, OSError):  # not the main thread, or an embedded interpreter
        watch.close()
        return False
    try:
        threading.Thread(target=watch.run, name="discord-logging-signals", daemon=True).start()
    except RuntimeError:  # no new thread at interpreter shutdown
        with contextlib.suppress(ValueError, OSError):
            watch.give_back()
        watch.close()
        return False
    _WATCH = watch
    return True


def before_fork() -> None:
    """In the parent: a multiprocessing child (a Pool worker) watches when its
    ``_bootstrap`` runs. Registered once, when multiprocessing is there (never imported here)."""
    _hook_children()


def _hook_children() -> None:
    global _HOOKED
    util = sys.modules.get("multiprocessing.util")
    if _HOOKED or _WANTED is None or util is None:
        return
    with contextlib.suppress(Exception):
        util.register_after_fork(_CHILD_HOOK, _watch_in_child)
        _HOOKED = True


# The forking thread's mask before the hold: per thread, since two threads may fork at once
# (a Pool's handler thread repopulating while the main thread starts a subprocess).
_HELD = threading.local()


def hold_across_fork() -> None:
    """The library's last before-fork step: while the drain is SIGTERM's handler, block
    SIGTERM in the forking thread. CPython forgets in a new child the signals noted before
    its interpreter is set up again; held, a SIGTERM that reaches the child in that instant
    stays pending until :func:`release_after_fork` (docs/architecture.md, "Held across a
    fork")."""
    if _WANTED is None or not _WANTED[0]():
        return
    with contextlib.suppress(ValueError, OSError):
        _HELD.mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})


def release_after_fork() -> None:
    """The last after-fork step, in parent and child: the mask as it was. In the child a
    SIGTERM that came meanwhile is delivered now, and the drain runs."""
    held = getattr(_HELD, "mask", None)
    _HELD.mask = None
    if held is not None:
        with contextlib.suppress(ValueError, OSError):
            signal.pthread_sigmask(signal.SIG_SETMASK, held)


def forget_in_child() -> None:
    """The after-fork hook: no thread, no I/O. The wakeup fd is given back (the child's
    signals would go to the parent's socket) and the child's copies closed; a child that
    cannot give it back (forked from another thread) keeps them open, since CPython would
    write into whatever file took the closed number."""
    global _WATCH
    watch, _WATCH = _WATCH, None
    if watch is None:
        return
    try:
        watch.give_back()
    except (ValueError, OSError):
        return
    watch.close()


def _watch_in_child(hook: _ChildHook) -> None:
    """In a multiprocessing child, from its ``_bootstrap`` (main thread): watch again while
    the drain it inherited is still SIGTERM's handler."""
    if _WANTED is not None and _WATCH is None and _WANTED[0]():
        start(*_WANTED)
