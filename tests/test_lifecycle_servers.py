"""The exit paths of two servers, followed in process (the real runs are in test_endings.py,
test_pools.py and test_integrations.py): uvicorn's SIGTERM handler and re-raise, billiard's
pool-process exit (Celery's prefork pool)."""

from __future__ import annotations

import inspect
import multiprocessing
import multiprocessing.util
import signal
import sys
import weakref
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from discord_logging import lifecycle

# Real servers and processes (web servers, Celery, the examples).
pytestmark = pytest.mark.slow


class Recorded:
    """A stand-in handler: what the exit hooks called on it, in order."""

    def __init__(self, *, drains_on_sigterm: bool = True) -> None:
        self.calls: list[str] = []
        self.drains_on_sigterm = drains_on_sigterm

    def _sigterm_drain_wanted(self) -> bool:
        return self.drains_on_sigterm

    def _before_fork(self) -> None: ...
    def _after_fork_in_parent(self) -> None: ...
    def _after_fork_in_child(self) -> None: ...

    def _drain_before_exit(self) -> None:
        self.calls.append("drain")

    def _sigterm_survived(self) -> None:
        self.calls.append("survived")

    def close(self) -> None:
        self.calls.append("close")


@pytest.fixture(autouse=True)
def _no_exit_under_way(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts with no exit under way, and the exit paths it runs leave none set."""
    monkeypatch.setattr(lifecycle, "_DRAINING", False)
    monkeypatch.setattr(lifecycle, "_SIGTERM_NOTED", False)
    monkeypatch.setattr(lifecycle, "_CLOSING_AT_EXIT", False)
    monkeypatch.setattr(lifecycle.atexit, "register", lambda *args, **kwargs: None)


@pytest.fixture
def sigterm() -> Iterator[None]:
    """SIGTERM's handler in this process is put back after the test."""
    saved = signal.getsignal(signal.SIGTERM)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, saved)


@pytest.fixture
def killed(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The signals the hooks send this process (``os.kill``), recorded instead of sent."""
    sent: list[int] = []
    monkeypatch.setattr(lifecycle.os, "kill", lambda pid, signum: sent.append(signum))
    return sent


@pytest.fixture
def at_exit(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Callable[..., Any], tuple[Any, ...]]]:
    """What the hooks register with atexit, recorded instead of registered."""
    registered: list[tuple[Callable[..., Any], tuple[Any, ...]]] = []
    monkeypatch.setattr(lifecycle.atexit, "register", lambda f, *a: registered.append((f, a)))
    return registered


class NotingNothing:
    """A handler method of a class that says it is uvicorn's, which notes no signal."""

    __module__ = "uvicorn.server"

    def __init__(self, captured: object) -> None:
        self._captured_signals = captured

    def handle_exit(self, sig: int, frame: object) -> None: ...


def test_only_a_uvicorn_server_with_its_reraise_list_is_followed(sigterm: None) -> None:
    """Any other SIGTERM handler (the application's own, a uvicorn without the list it
    re-raises from) is left alone: nothing installed."""

    def own(signum: int, frame: object) -> None: ...

    signal.signal(signal.SIGTERM, own)
    assert not lifecycle._follow_uvicorn(own)
    assert not lifecycle._follow_uvicorn(NotingNothing(None).handle_exit)
    assert signal.getsignal(signal.SIGTERM) is own


@pytest.mark.parametrize("drains", [True, False])
def test_uvicorns_sigterm_is_taken_off_its_reraise_list_and_the_exit_ends_by_sigterm(
    sigterm: None,
    at_exit: list[tuple[Callable[..., Any], tuple[Any, ...]]],
    monkeypatch: pytest.MonkeyPatch,
    drains: bool,
) -> None:
    """uvicorn's handler runs (its graceful shutdown begins); SIGTERM is no longer re-raised
    by uvicorn, and the end by SIGTERM is registered after the exit drain instead. A handler
    opted out (DISCORD_HANDLE_SIGTERM=false, known once its settings loaded) leaves uvicorn's
    re-raise as it was."""
    uvicorn = pytest.importorskip("uvicorn")
    handler = Recorded(drains_on_sigterm=drains)
    monkeypatch.setattr(lifecycle, "_HANDLERS", weakref.WeakSet([handler]))

    async def app(scope: object, receive: object, send: object) -> None: ...

    server = uvicorn.Server(uvicorn.Config(app))
    signal.signal(signal.SIGTERM, server.handle_exit)
    assert lifecycle._follow_uvicorn(server.handle_exit)
    followed = signal.getsignal(signal.SIGTERM)
    assert callable(followed)
    followed(signal.SIGTERM, None)
    assert server.should_exit
    if drains:
        assert server._captured_signals == []
        assert at_exit == [(lifecycle._reraise_after_drain, (signal.SIGTERM,))]
    else:
        assert server._captured_signals == [signal.SIGTERM]
        assert at_exit == []


def test_in_a_multiprocessing_child_the_end_by_sigterm_is_the_last_finalizer(
    sigterm: None,
    at_exit: list[tuple[Callable[..., Any], tuple[Any, ...]]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """uvicorn --workers runs each worker as a multiprocessing child, which ends through the
    finalizers, not atexit: the end by SIGTERM comes after every handler's finalizer."""
    finalizers: list[dict[str, Any]] = []
    monkeypatch.setattr(multiprocessing, "parent_process", object)
    monkeypatch.setattr(multiprocessing.util, "Finalize", lambda *a, **kw: finalizers.append(kw))
    lifecycle._end_by_sigterm_at_exit()
    [finalizer] = finalizers
    assert finalizer["exitpriority"] < lifecycle._EXIT_PRIORITY
    assert finalizer["args"] == (signal.SIGTERM,)
    assert len(at_exit) == 1


def test_a_signal_uvicorn_did_not_note_is_not_ended_by_us(
    sigterm: None, at_exit: list[tuple[Callable[..., Any], tuple[Any, ...]]]
) -> None:
    """If uvicorn's handler did not note the signal (it will not re-raise it), nothing is
    registered: the process ends as uvicorn decides."""
    server = NotingNothing([])
    assert lifecycle._follow_uvicorn(server.handle_exit)
    followed = signal.getsignal(signal.SIGTERM)
    assert callable(followed)
    followed(signal.SIGTERM, None)
    assert at_exit == []


def test_a_billiard_pool_process_drains_after_the_pools_on_exit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With billiard imported, its pool process's exit (``Worker._do_exit``, which ends in
    os._exit) first runs the pool's on_exit (Celery's worker_process_shutdown), then drains and
    closes every handler, then goes on as before; wrapped once only."""
    billiard_pool = pytest.importorskip("billiard.pool")
    handler = Recorded()
    monkeypatch.setattr(lifecycle, "_HANDLERS", weakref.WeakSet([handler]))
    ended: list[tuple[Any, ...]] = []

    class Worker:
        on_exit = staticmethod(lambda pid, exitcode: handler.calls.append("on_exit"))

        def _do_exit(self, pid: int, exitcode: int, exc: object = None) -> None:
            self.on_exit(pid, exitcode)
            ended.append((pid, exitcode, exc))

    monkeypatch.setattr(billiard_pool, "Worker", Worker)
    lifecycle.follow_billiard_pool_exit()
    lifecycle.follow_billiard_pool_exit()  # once only
    Worker()._do_exit(7, 0)
    assert handler.calls == ["on_exit", "drain", "close"]
    assert ended == [(7, 0, None)]


def test_without_an_on_exit_the_handlers_still_drain(monkeypatch: pytest.MonkeyPatch) -> None:
    """A bare billiard Pool has no on_exit callback: the handlers drain all the same."""
    billiard_pool = pytest.importorskip("billiard.pool")
    handler = Recorded()
    monkeypatch.setattr(lifecycle, "_HANDLERS", weakref.WeakSet([handler]))

    class Worker:
        on_exit = None

        def _do_exit(self, pid: int, exitcode: int, exc: object = None) -> None:
            if self.on_exit is not None:
                self.on_exit(pid, exitcode)

    monkeypatch.setattr(billiard_pool, "Worker", Worker)
    lifecycle.follow_billiard_pool_exit()
    Worker()._do_exit(7, 0)
    assert handler.calls == ["drain", "close"]


def test_billiards_worker_still_has_the_exit_step_followed() -> None:
    """The installed billiard still ends a pool process in Worker._do_exit through on_exit:
    if an upgrade renames them, this says so before pool processes go back to losing."""
    billiard_pool = pytest.importorskip("billiard.pool")
    source = inspect.getsource(billiard_pool.Worker._do_exit)
    assert "self.on_exit(" in source
    assert "os._exit(" in source


def test_without_billiard_imported_nothing_is_wrapped(monkeypatch: pytest.MonkeyPatch) -> None:
    """The library never imports billiard: without it in sys.modules, nothing happens."""
    monkeypatch.delitem(sys.modules, "billiard.pool", raising=False)
    monkeypatch.delitem(sys.modules, "billiard", raising=False)
    lifecycle.follow_billiard_pool_exit()
    assert "billiard.pool" not in sys.modules


def test_the_reraise_comes_after_each_handler_drained_and_closed(
    sigterm: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """At the end, every handler is drained and closed, then SIGTERM is raised to the
    disposition uvicorn restored (here a handler of the test's, standing for gunicorn's)."""
    handler = Recorded()
    monkeypatch.setattr(lifecycle, "_HANDLERS", weakref.WeakSet([handler]))
    raised: list[int] = []
    signal.signal(signal.SIGTERM, lambda signum, frame: raised.append(signum))
    lifecycle._reraise_after_drain(signal.SIGTERM)
    assert handler.calls == ["drain", "close"]
    assert raised == [signal.SIGTERM]


@pytest.mark.parametrize("pid_1", [False, True], ids=["any pid", "pid 1"])
def test_a_sigterm_during_the_exit_drain_lets_that_drain_finish(
    sigterm: None, killed: list[int], monkeypatch: pytest.MonkeyPatch, pid_1: bool
) -> None:
    """SIGTERM (a Pool's terminate()) arriving while the exit drain runs: the signal handler,
    which runs inside the drain's own waits, neither drains again there nor kills the
    process; the drain under way finishes, then the handlers are closed and SIGTERM is
    raised again (the process would otherwise wait for its non-daemon threads). In pid 1,
    where it would be ignored, nothing is closed and the drain is installed again."""
    monkeypatch.setattr(lifecycle, "_ends_by_default", lambda: not pid_1)
    handler = Recorded()

    def drain_interrupted_by_sigterm() -> None:
        handler.calls.append("drain")
        lifecycle._on_sigterm(signal.SIGTERM, None)

    handler._drain_before_exit = drain_interrupted_by_sigterm  # type: ignore[method-assign]
    monkeypatch.setattr(lifecycle, "_HANDLERS", weakref.WeakSet([handler]))
    lifecycle._drain_before_thread_shutdown()
    if pid_1:
        assert handler.calls == ["drain"]
        assert killed == []
        assert signal.getsignal(signal.SIGTERM) is lifecycle._on_sigterm
    else:
        assert handler.calls == ["drain", "close"]
        assert killed == [signal.SIGTERM]


@pytest.mark.parametrize("pid_1", [True, False], ids=["pid 1", "any other pid"])
def test_the_sigterm_drain_closes_only_a_process_that_ends(
    sigterm: None, killed: list[int], monkeypatch: pytest.MonkeyPatch, pid_1: bool
) -> None:
    """The drain delivers; it closes the handler only where the re-raised SIGTERM ends the
    process. In pid 1 the handler is told it goes on, and the drain is installed again."""
    handler = Recorded()
    monkeypatch.setattr(lifecycle, "_HANDLERS", weakref.WeakSet([handler]))
    monkeypatch.setattr(lifecycle, "_ends_by_default", lambda: not pid_1)
    lifecycle._on_sigterm(signal.SIGTERM, None)
    assert killed == [signal.SIGTERM]
    if pid_1:
        assert handler.calls == ["drain", "survived"]
        assert signal.getsignal(signal.SIGTERM) is lifecycle._on_sigterm
    else:
        assert handler.calls == ["drain", "close"]
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
