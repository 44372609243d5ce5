"""The exit paths of two servers, followed in process (the real runs are in test_endings.py and
test_integrations.py): uvicorn's SIGTERM handler and re-raise, Celery's pool-process exit."""

from __future__ import annotations

import multiprocessing
import multiprocessing.util
import signal
import sys
import weakref
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from discord_logging import lifecycle


class Recorded:
    """A stand-in handler: what the exit hooks called on it, in order."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def _before_fork(self) -> None: ...
    def _after_fork_in_parent(self) -> None: ...
    def _after_fork_in_child(self) -> None: ...

    def _drain_before_exit(self) -> None:
        self.calls.append("drain")

    def close(self) -> None:
        self.calls.append("close")


@pytest.fixture
def sigterm() -> Iterator[None]:
    """SIGTERM's handler in this process is put back after the test."""
    saved = signal.getsignal(signal.SIGTERM)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, saved)


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


def test_uvicorns_sigterm_is_taken_off_its_reraise_list_and_the_exit_ends_by_sigterm(
    sigterm: None, at_exit: list[tuple[Callable[..., Any], tuple[Any, ...]]]
) -> None:
    """uvicorn's handler runs (its graceful shutdown begins); SIGTERM is no longer re-raised
    by uvicorn, and the end by SIGTERM is registered after the exit drain instead."""
    uvicorn = pytest.importorskip("uvicorn")

    async def app(scope: object, receive: object, send: object) -> None: ...

    server = uvicorn.Server(uvicorn.Config(app))
    signal.signal(signal.SIGTERM, server.handle_exit)
    assert lifecycle._follow_uvicorn(server.handle_exit)
    followed = signal.getsignal(signal.SIGTERM)
    assert callable(followed)
    followed(signal.SIGTERM, None)
    assert server.should_exit
    assert server._captured_signals == []
    assert at_exit == [(lifecycle._reraise_after_drain, (signal.SIGTERM,))]


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


def test_celerys_pool_process_exit_drains_then_closes_each_handler(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With Celery imported, worker_process_shutdown (sent in a pool process just before
    billiard's os._exit) drains, then closes, every handler of the process."""
    signals = pytest.importorskip("celery.signals")
    handler = Recorded()
    monkeypatch.setattr(lifecycle, "_HANDLERS", weakref.WeakSet([handler]))
    lifecycle.follow_celery_pool_exit()
    lifecycle.follow_celery_pool_exit()  # once only
    try:
        signals.worker_process_shutdown.send(sender=None, pid=1, exitcode=0)
    finally:
        signals.worker_process_shutdown.disconnect(dispatch_uid=lifecycle.__name__)
    assert handler.calls == ["drain", "close"]


def test_without_celery_imported_nothing_is_connected(monkeypatch: pytest.MonkeyPatch) -> None:
    """The library never imports Celery: without it in sys.modules, nothing happens."""
    monkeypatch.delitem(sys.modules, "celery.signals", raising=False)
    before = set(sys.modules)
    lifecycle.follow_celery_pool_exit()
    assert "celery.signals" not in set(sys.modules) - before


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
