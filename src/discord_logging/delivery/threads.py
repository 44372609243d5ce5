"""The worker's thread helpers: the lookup threads its loop uses, awaiting a call on the
store's thread, running its loop so that an exit never waits for a thread."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from ..deadletters import StoreCalls

T = TypeVar("T")


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


def _run_inline(fn: Callable[..., T], args: Any, kwargs: Any) -> concurrent.futures.Future[T]:
    future: concurrent.futures.Future[T] = concurrent.futures.Future()
    try:
        future.set_result(fn(*args, **kwargs))
    except BaseException as exc:  # noqa: BLE001 - handed to the awaiting coroutine
        future.set_exception(exc)
    return future


async def run_off_loop(thread: StoreCalls | None, fn: Callable[..., T], *args: Any) -> T:
    """``fn(*args)`` on the store's ``thread``, awaited; inline when there is none (it runs
    the call inline itself when it cannot start: interpreter shutdown, the store closed)."""
    if thread is None:
        return fn(*args)
    return await asyncio.wrap_future(thread.submit(fn, *args))


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
