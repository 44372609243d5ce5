"""Process lifecycle: what the handlers do at fork, at interpreter exit and when a
multiprocessing child ends. See docs/architecture.md ("Fork", "Exit").

Python's exit order decides the mechanism:

1. ``threading._shutdown()`` runs the ``threading._register_atexit`` hooks in reverse order of
   registration. ``concurrent.futures.thread`` registers one at import that refuses new work
   and joins the pool threads. Ours is registered after it (this module imports it first), so it
   runs before it: each live handler drains within ``close_timeout`` while pools still work.
2. Non-daemon threads are joined, then ``atexit`` runs ``logging.shutdown()``, which closes the
   handlers. Records logged after step 1 (by atexit functions, by late threads) still need a
   name lookup, which asyncio runs in the loop's default executor:
   :class:`~discord_logging.delivery.threads.LookupThreads`
   runs each lookup on a thread of its own (inline when none can start), so ``getaddrinfo``
   works at exit too, and no lookup thread is joined there.

multiprocessing's fork and forkserver children end with ``os._exit``: ``atexit`` never runs for
them, but ``BaseProcess._bootstrap`` runs ``multiprocessing.util._exit_function()`` first, which
calls the finalizers that have an exit priority. A handler whose worker runs in such a child
registers one (see :func:`watch_process_end`). Two others end their processes another way:
billiard's pool processes (Celery's prefork pool) call ``os._exit`` before that function
runs, and uvicorn re-raises SIGTERM at its default disposition after its graceful shutdown;
each is followed where it ends (:func:`follow_billiard_pool_exit`, :func:`_follow_uvicorn`).
"""

from __future__ import annotations

# Imported before our exit hook is registered: its own hook then runs after ours.
import atexit
import concurrent.futures.thread  # noqa: F401
import contextlib
import os
import signal
import sys
import threading
import warnings
import weakref
from collections.abc import Iterator
from typing import Any, Protocol

from . import signal_watch
from .fork_gate import FORK_GATE, FORK_WAIT, ForkGate

__all__ = ["FORK_GATE", "FORK_WAIT", "ForkGate", "drain_on_sigterm", "register"]


class ProcessHandler(Protocol):
    """What the hooks need of a handler (``DiscordHandler``)."""

    def _before_fork(self) -> None: ...
    def _after_fork_in_parent(self) -> None: ...
    def _after_fork_in_child(self) -> None: ...
    def _drain_before_exit(self) -> None: ...
    def _sigterm_drain_wanted(self) -> bool: ...
    def _sigterm_survived(self) -> None: ...
    def close(self) -> None: ...


_HANDLERS: weakref.WeakSet[ProcessHandler] = weakref.WeakSet()
_FORK_HOOK_INSTALLED = False


def register(handler: ProcessHandler) -> None:
    """Fork and exit hooks for ``handler``; held weakly, so the hooks keep no handler alive."""
    global _FORK_HOOK_INSTALLED
    _HANDLERS.add(handler)
    if not _FORK_HOOK_INSTALLED and hasattr(os, "register_at_fork"):
        os.register_at_fork(
            before=_before_fork,
            after_in_parent=_after_fork_in_parent,
            after_in_child=_after_fork_in_child,
        )
        _FORK_HOOK_INSTALLED = True


# -- SIGTERM ---------------------------------------------------------------------------------

_SIGTERM_INSTALLED = False


def drain_on_sigterm() -> bool:
    """Where the application left SIGTERM at its default disposition (``docker stop``,
    systemd, Kubernetes, ``kill``), make it run what a normal exit runs for the handlers (the
    drain within ``close_timeout``, kept letters written) and then end the process as SIGTERM
    would have, so the parent sees the same status. Only from the main thread, once; an
    application or server with a SIGTERM handler of its own is left alone. True if installed."""
    global _SIGTERM_INSTALLED
    if _SIGTERM_INSTALLED or threading.current_thread() is not threading.main_thread():
        return False
    try:
        current = signal.getsignal(signal.SIGTERM)
        if current is signal.SIG_DFL:
            signal.signal(signal.SIGTERM, _on_sigterm)
            signal_watch.install(_drain_is_installed, _drain_starts)
        elif not _follow_uvicorn(current):
            return False
    except (ValueError, OSError, AttributeError):  # no signals here (an embedded interpreter)
        return False
    _SIGTERM_INSTALLED = True
    return True


# An exit path (the thread-shutdown drain, a child's finalizer, the SIGTERM drain, the final
# close at atexit) is draining or closing the handlers now. A SIGTERM then lets it finish
# instead of draining again inside it: the signal handler runs on the main thread in the middle
# of the exit's own waits, and waiting again there on the same Event can block for good on the
# lock the interrupted wait holds (seen: a forkserver Pool worker terminate()d during its exit
# drain, both threads stuck). The signal is noted and raised again once that path is done: a
# drain that has finished holds no SIGTERM back (the process then waits for non-daemon threads,
# which SIGTERM ends without the library).
_DRAINING = False
_SIGTERM_NOTED = False
# From the first atexit function on, logging.shutdown() is to flush and close the handlers: a
# SIGTERM that interrupts one of their waits lets it finish (the exit then ends as it was).
_CLOSING_AT_EXIT = False


# How many times the drain has begun: the watcher (signal_watch.py) sends a caught SIGTERM
# again to a main thread that has not begun it, blocked in a wait that missed the signal.
_SIGTERM_STARTS = 0


def _drain_starts() -> int:
    return _SIGTERM_STARTS


def _drain_is_installed() -> bool:
    return signal.getsignal(signal.SIGTERM) is _on_sigterm


def _on_sigterm(signum: int, frame: object) -> None:
    global _SIGTERM_NOTED, _SIGTERM_STARTS
    _SIGTERM_STARTS += 1
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a second SIGTERM ends it at once
    wanted = [h for h in list(_HANDLERS) if h._sigterm_drain_wanted()]  # else opted out
    if wanted and (_DRAINING or (_CLOSING_AT_EXIT and _inside_library(frame))):
        _SIGTERM_NOTED = True  # the path under way finishes, then raises it (_exit_path)
        return
    goes_on = not _ends_by_default()
    with _exit_path():
        for handler in wanted:
            _drain(handler)
        if not goes_on:  # what the drain could not deliver is kept as letters
            for handler in wanted:
                _close_handler(handler)
    os.kill(os.getpid(), signal.SIGTERM)  # what SIGTERM would have done without us
    if goes_on:
        # pid 1: the kernel ignored it. The handlers were drained, not closed, and keep
        # working; the next SIGTERM drains again.
        for handler in wanted:
            with contextlib.suppress(Exception):
                handler._sigterm_survived()
        signal.signal(signal.SIGTERM, _on_sigterm)


def _ends_by_default() -> bool:
    """Whether SIGTERM at its default disposition ends this process: not for pid 1 (a
    container's first process, the init of a pid namespace), which the kernel protects."""
    return os.getpid() != 1


def _inside_library(frame: object) -> bool:
    """Whether the main thread was interrupted in this library's code (a wait of its own)."""
    current: Any = frame
    while current is not None:
        if str(current.f_globals.get("__name__", "")).startswith(__package__ or "\0"):
            return True
        current = current.f_back
    return False


@contextlib.contextmanager
def _exit_path() -> Iterator[None]:
    """Mark an exit path draining or closing the handlers; a SIGTERM noted meanwhile
    (:func:`_on_sigterm`) is raised once the outermost path is done, after the handlers are
    closed (the process ends: what is left is kept)."""
    global _DRAINING, _SIGTERM_NOTED
    outer = _DRAINING
    _DRAINING = True
    try:
        yield
    finally:
        _DRAINING = outer
        if not outer and _SIGTERM_NOTED:
            _SIGTERM_NOTED = False
            _raise_noted()


def _raise_noted() -> None:
    """The SIGTERM noted during an exit path, now that it is done: what it would have done."""
    global _DRAINING
    if not _ends_by_default():  # pid 1: ignored; the handlers go on, the drain stays
        with contextlib.suppress(ValueError):  # not the main thread: SIG_DFL stays
            signal.signal(signal.SIGTERM, _on_sigterm)
        return
    _DRAINING = True  # the close below is an exit path too
    try:
        for handler in list(_HANDLERS):
            _close_handler(handler)
    finally:
        _DRAINING = False
    os.kill(os.getpid(), signal.SIGTERM)  # SIG_DFL already (_on_sigterm)


def _drain(handler: ProcessHandler) -> None:
    """Deliver what is pending, held storm summaries included, while Discord is healthy;
    never raises."""
    with contextlib.suppress(Exception):  # never stop the exit because of us
        handler._drain_before_exit()


def _close_handler(handler: ProcessHandler) -> None:
    with contextlib.suppress(Exception):  # a failed drain still closes (keeps the rest)
        handler.close()


def _end(handler: ProcessHandler) -> None:
    """Drain, then close (keep what is left); for exit paths that end the process."""
    with _exit_path():
        _drain(handler)
        _close_handler(handler)


def _follow_uvicorn(current: Any) -> bool:
    """uvicorn's server handles SIGTERM while it serves (the application's module, and so the
    handler, is imported under that handler), and after its graceful shutdown (the lifespan's
    included) restores the handler it found (the default disposition, mostly) and re-raises
    the signal: the process dies before ``atexit`` or multiprocessing's finalizers run, and
    what is still queued or held for the aggregation window is lost. Its handler stays and
    runs first; then SIGTERM is taken off the list of signals it re-raises, so the process
    ends normally through the handlers' exit drain, and :func:`_reraise_after_drain` raises
    it at the very end, to whatever uvicorn restored (SIG_DFL: the status uvicorn's re-raise
    gives; a handler of gunicorn's UvicornWorker: its own exit). Only a method of
    ``uvicorn.server.Server`` with that list is followed; any other handler is left alone."""
    server = getattr(current, "__self__", None)
    if type(server).__module__ != "uvicorn.server":
        return False
    captured = getattr(server, "_captured_signals", None)
    if not isinstance(captured, list):
        return False

    def after_uvicorn(signum: int, frame: Any) -> None:
        current(signum, frame)  # uvicorn's: the graceful shutdown begins, the signal is noted
        wanted = any(handler._sigterm_drain_wanted() for handler in list(_HANDLERS))
        if signum in captured and wanted:  # else opted out in .env: uvicorn's re-raise
            captured[:] = [s for s in captured if s != signum]
            _end_by_sigterm_at_exit()

    signal.signal(signal.SIGTERM, after_uvicorn)
    return True


def _end_by_sigterm_at_exit() -> None:
    """Once the exit drain has run, re-raise SIGTERM as uvicorn would have: last of the
    multiprocessing finalizers in a child (uvicorn ``--workers``), first of the ``atexit``
    functions otherwise (after the thread-shutdown drain)."""
    atexit.register(_reraise_after_drain, signal.SIGTERM)
    mp = sys.modules.get("multiprocessing")
    if mp is not None and mp.parent_process() is not None:
        sys.modules["multiprocessing.util"].Finalize(
            None, _reraise_after_drain, args=(signal.SIGTERM,), exitpriority=_EXIT_PRIORITY - 1
        )


def _reraise_after_drain(signum: int) -> None:
    for handler in list(_HANDLERS):  # drained and closed already by the exit path: at once
        _end(handler)
    signal.raise_signal(signum)


def _before_fork() -> None:
    # The child's interpreter drops the parent's other threads' states (their thread-local
    # SQLite connections among them) before any after-fork hook runs, and Python 3.13 warns
    # for each connection: the child must already carry the filter then. The parent's own
    # filters are put back after the fork.
    global _FILTERS_BEFORE_FORK
    signal_watch.before_fork()
    _FILTERS_BEFORE_FORK = list(warnings.filters)
    warnings.filterwarnings("ignore", "unclosed database", ResourceWarning)
    for handler in list(_HANDLERS):
        with contextlib.suppress(Exception):  # a fork must never fail because of us
            handler._before_fork()
    # Then what other threads are in the middle of (the handlers' loops and store threads
    # are held between steps now): a write run inline, the shared limits' SQLite.
    FORK_GATE.close(FORK_WAIT)
    signal_watch.hold_across_fork()  # last: a SIGTERM meanwhile waits for the hooks after


def _after_fork_in_parent() -> None:
    try:
        FORK_GATE.reopen()
        _restore_filters()
        for handler in list(_HANDLERS):
            with contextlib.suppress(Exception):
                handler._after_fork_in_parent()
    finally:
        signal_watch.release_after_fork()


def _restore_filters() -> None:
    global _FILTERS_BEFORE_FORK
    saved, _FILTERS_BEFORE_FORK = _FILTERS_BEFORE_FORK, None
    if saved is not None:
        warnings.filters[:] = saved  # type: ignore[index]
        mutated = getattr(warnings, "_filters_mutated", None)
        if mutated is not None:
            mutated()


_FILTERS_BEFORE_FORK: list[Any] | None = None


def _after_fork_in_child() -> None:
    # Resets state only: no I/O, no lock anyone else may hold, no store opened. A child that
    # execs or ends at once (subprocess's preexec_fn, os.fork + os._exit) pays nothing.
    try:
        FORK_GATE.reset_in_child()
        signal_watch.forget_in_child()
        for handler in list(_HANDLERS):
            handler._after_fork_in_child()
    finally:
        signal_watch.release_after_fork()  # last: a SIGTERM held since the fork drains then


def _drain_before_thread_shutdown() -> None:
    with _exit_path():
        for handler in list(_HANDLERS):
            _drain(handler)
    # The final close (logging.shutdown, at atexit) is an exit path too: marked by an atexit
    # function registered now, so it runs before logging's (registered at its import).
    atexit.register(_closing_at_exit)


def _closing_at_exit() -> None:
    """From here ``logging.shutdown()`` flushes and closes the handlers: a SIGTERM that lands
    in one of their waits lets it finish (within what is left of ``close_timeout``), and the
    exit goes on as it was. One that lands in the application's own atexit functions drains,
    closes and ends the process, as any other SIGTERM."""
    global _CLOSING_AT_EXIT
    _CLOSING_AT_EXIT = True


with contextlib.suppress(AttributeError, RuntimeError):  # private API; absent: atexit only
    threading._register_atexit(_drain_before_thread_shutdown)  # type: ignore[attr-defined]


# -- multiprocessing children -----------------------------------------------------------------

_WATCHED: weakref.WeakKeyDictionary[ProcessHandler, int] = weakref.WeakKeyDictionary()
# Runs after every finalizer of priority >= 0 and after the child's own children were joined.
_EXIT_PRIORITY = -100


def watch_process_end(handler: ProcessHandler) -> None:
    """Close ``handler`` when a multiprocessing child ends, though ``atexit`` never runs there.

    Called when the handler's worker starts. Only if multiprocessing is already imported (it is
    never imported here): in a child, a finalizer is registered now; in any other process an
    after-fork hook registers it when a child's ``_bootstrap`` runs (which first clears the
    finalizers inherited or registered before, e.g. while a forkserver child imports main).
    billiard's pool processes, which end before any finalizer, are followed here too."""
    if _WATCHED.get(handler) == os.getpid():
        return
    _WATCHED[handler] = os.getpid()
    follow_billiard_pool_exit()
    mp = sys.modules.get("multiprocessing")
    util = sys.modules.get("multiprocessing.util")
    if mp is None or util is None:
        return
    if mp.parent_process() is not None:
        _finalize_in_child(handler)
    else:
        util.register_after_fork(handler, _finalize_in_child)


def _finalize_in_child(handler: ProcessHandler) -> None:
    util = sys.modules["multiprocessing.util"]
    _WATCHED[handler] = os.getpid()
    util.Finalize(handler, _close, args=(weakref.ref(handler),), exitpriority=_EXIT_PRIORITY)


def _close(ref: weakref.ref[ProcessHandler]) -> None:
    handler = ref()
    if handler is not None:
        # A flush first, as a normal exit's drain does: what the child's queue overflowed is
        # taken back and delivered while Discord is healthy (a closing lane takes nothing
        # back), within close_timeout; then the close keeps what is left.
        _end(handler)


# -- billiard's pool (Celery's prefork pool) ----------------------------------------------------


def follow_billiard_pool_exit() -> None:
    """Drain and close the handlers when a billiard pool process ends (Celery's prefork pool).

    billiard's pool process ends with ``os._exit`` in ``Worker._do_exit``, inside ``run()``:
    neither ``atexit`` nor ``_exit_function`` runs there (billiard's ``Finalize`` and
    finalizer registry are multiprocessing's own, so a finalizer is never called). The one
    step on that path is the pool's ``on_exit`` callback, with which Celery sends
    ``worker_process_shutdown``. So ``Worker._do_exit`` is wrapped to chain that callback:
    the application's receivers run first (what they log is still sent), then the handlers
    drain and close, then billiard ends the process. Only when ``billiard.pool`` is already
    imported (never imported here); in a pool process forked afterwards the class is already
    wrapped, and a handler whose worker starts in one wraps it there. Once per process."""
    worker = getattr(sys.modules.get("billiard.pool"), "Worker", None)
    do_exit = getattr(worker, "_do_exit", None)
    if worker is None or not callable(do_exit) or getattr(do_exit, "_drains", False):
        return

    def drain_at_exit(self: Any, *args: Any, **kwargs: Any) -> Any:
        on_exit = getattr(self, "on_exit", None)

        def on_exit_then_drain(*exit_args: Any, **exit_kwargs: Any) -> None:
            try:
                if on_exit is not None:
                    on_exit(*exit_args, **exit_kwargs)
            finally:
                _on_pool_process_exit()

        self.on_exit = on_exit_then_drain
        return do_exit(self, *args, **kwargs)

    drain_at_exit._drains = True  # type: ignore[attr-defined]
    worker._do_exit = drain_at_exit


def _on_pool_process_exit() -> None:
    for handler in list(_HANDLERS):
        _end(handler)
