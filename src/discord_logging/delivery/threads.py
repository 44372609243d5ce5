"""The worker's thread helpers: the exit-safe executor its store reads use, the lookup threads
its loop uses, and parking a thread between two calls before a fork (see
:mod:`discord_logging.lifecycle`)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import concurrent.futures.thread
import functools
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


class ExitSafeExecutor(concurrent.futures.ThreadPoolExecutor):
    """The worker loop's default executor (asyncio runs ``getaddrinfo`` in it).

    When the pool refuses a call (``cannot schedule new futures after interpreter shutdown``,
    or no thread can be started at exit), the call runs inline on the caller's thread: the
    loop blocks for one lookup, which at exit is better than losing the record."""

    _starved = False

    def submit(
        self, fn: Callable[..., T], /, *args: Any, **kwargs: Any
    ) -> concurrent.futures.Future[T]:
        try:
            future = super().submit(fn, *args, **kwargs)
        except RuntimeError:  # the pool or the interpreter is shutting down
            return _run_inline(fn, args, kwargs)
        # The call is queued but no thread could be started for it: take it back (a thread
        # that appears later skips a cancelled item) and run it here.
        if self._starved and not self._threads and future.cancel():
            return _run_inline(fn, args, kwargs)
        return future

    def park(self, timeout: float) -> Callable[[], None]:
        """Hold the pool's thread between two calls until the returned function is called
        (at most ``timeout`` seconds each way). Before a fork: the store thread is then not
        inside a SQLite call, whose process-wide mutexes a child would inherit locked. Only
        for a one-thread pool (it runs one call at a time, so once the hold runs nothing
        else does); a pool that never started its thread has nothing to hold."""
        if not self._threads or self._max_workers != 1:
            return nothing_parked
        return park_between_calls(self.submit, timeout)

    def _adjust_thread_count(self) -> None:
        try:
            super()._adjust_thread_count()
        except RuntimeError:  # "can't create new thread at interpreter shutdown"
            self._starved = True


class LookupThreads(concurrent.futures.ThreadPoolExecutor):
    """The worker loop's default executor, for name lookups (asyncio runs ``getaddrinfo`` in
    it): each call on a daemon thread of its own, which ends with the call. No thread waits
    idle at rest, and none is joined at interpreter exit (``concurrent.futures`` joins a
    pool's threads without a limit there, so a resolver that never answers held the exit
    past its deadline). Lookups are rare: a connection is reused for many requests. When no
    thread can be started (interpreter shutdown), the call runs inline on the caller's
    thread: the loop blocks for one lookup, which at exit is better than losing the record.
    At most ``limit`` lookups run at once: a resolver that never answers leaves its threads
    waiting, so past the limit a lookup fails at once (an OSError, which the lane retries as
    a connection error) instead of starting one more thread for the rest of the outage."""

    def __init__(self, thread_name: str, limit: int = 4) -> None:
        # A ThreadPoolExecutor because asyncio's set_default_executor insists; its pool is
        # never used (submit below), so it never starts a thread or joins one.
        super().__init__(1, thread_name_prefix=thread_name)
        self._name = thread_name
        self._slots = threading.BoundedSemaphore(limit)

    def submit(
        self, fn: Callable[..., T], /, *args: Any, **kwargs: Any
    ) -> concurrent.futures.Future[T]:
        future: concurrent.futures.Future[T] = concurrent.futures.Future()
        if not self._slots.acquire(blocking=False):
            future.set_exception(OSError("name lookups are not being answered (all busy)"))
            return future

        def run() -> None:
            # The slot is given back before the outcome is: whoever sees it may look up again.
            if not future.set_running_or_notify_cancel():
                self._slots.release()
                return
            try:
                value = fn(*args, **kwargs)
            except BaseException as exc:  # noqa: BLE001 - handed to the awaiting coroutine
                self._slots.release()
                future.set_exception(exc)
                return
            self._slots.release()
            future.set_result(value)

        try:
            threading.Thread(target=run, name=self._name, daemon=True).start()
        except RuntimeError:  # "can't create new thread at interpreter shutdown"
            self._slots.release()
            return _run_inline(fn, args, kwargs)
        return future


def store_thread() -> ExitSafeExecutor:
    """The one thread a notifier's store reads run on (exit-safe like the lookup pool)."""
    return ExitSafeExecutor(1, thread_name_prefix="discord-logging-store")


def nothing_parked() -> None:
    """What a park that parked nothing returns: nothing to resume."""


def park_between_calls(
    schedule: Callable[[Callable[[], None]], object], timeout: float
) -> Callable[[], None]:
    """Have ``schedule`` run a hold as the next call of another thread (a loop's callback, a
    pool's work item) and wait until it runs: that thread is then between two calls, and
    stays there until the returned function is called (at most ``timeout`` seconds each way).
    A hold run inline on the calling thread (a pool refusing work at exit) does not wait. May
    raise what ``schedule`` raises."""
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


def _run_inline(fn: Callable[..., T], args: Any, kwargs: Any) -> concurrent.futures.Future[T]:
    future: concurrent.futures.Future[T] = concurrent.futures.Future()
    try:
        future.set_result(fn(*args, **kwargs))
    except BaseException as exc:  # noqa: BLE001 - handed to the awaiting coroutine
        future.set_exception(exc)
    return future


async def run_off_loop(executor: ExitSafeExecutor | None, fn: Callable[..., T], *args: Any) -> T:
    """``fn(*args)`` on ``executor``'s thread (the store thread), awaited; inline when there is
    none, or when it refuses work (interpreter shutdown: the record matters more than the loop
    then)."""
    call = functools.partial(fn, *args)
    if executor is None:
        return call()
    try:
        future = asyncio.get_running_loop().run_in_executor(executor, call)
    except RuntimeError:
        return call()
    return await future


def holds_logging_lock() -> bool:
    """Whether this thread holds logging's module lock (``dictConfig`` and
    ``logging.config``'s handler reset hold it around ``flush`` and ``close``): then nothing
    may wait for the worker's start, whose imports take that lock. Unknown: assume so."""
    import logging

    is_owned = getattr(getattr(logging, "_lock", None), "_is_owned", None)
    try:
        return bool(is_owned()) if is_owned is not None else True
    except Exception:  # noqa: BLE001 - an unusual lock: never wait
        return True


def run_exit_safe(main: Callable[[], Coroutine[Any, Any, None]], lookup_thread_name: str) -> None:
    """Run ``main()`` on a new event loop of this thread: ``asyncio.run`` without its
    ``shutdown_default_executor``, which starts a thread. This may run at interpreter exit,
    where a new thread is refused (Python 3.12.0-3.12.2) and pools refuse work; name lookups
    go to :class:`LookupThreads`."""
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    loop.set_default_executor(LookupThreads(lookup_thread_name))
    try:
        loop.run_until_complete(main())
    finally:
        try:
            tasks = asyncio.all_tasks(loop)
            for task in tasks:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            asyncio.set_event_loop(None)
            loop.close()  # shuts the executor down without waiting: no thread started
