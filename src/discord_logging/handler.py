"""``DiscordHandler``: a stdlib logging handler that never blocks and never raises.

``emit`` filters, guards against recursion, routes, snapshots and hands over; everything else
(aggregation, rendering, rate limiting, HTTP, dead letters) happens on the worker thread.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import weakref
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

from .deadletters import DeadLetterSink
from .notifier import Notifier
from .routing import Router
from .settings import DiscordSettings, load_settings
from .snapshot import snapshot
from .stats import DeliveryStats
from .store import Store
from .sync import BlockingSend
from .worker import ON_WORKER_THREAD, Worker

# Our own logger, and the HTTP stack's: httpx logs every request URL (token included) at INFO,
# and a record about sending a record must never be sent.
_IGNORED: set[str] = {"discord_logging", "httpx", "httpcore", "hpack", "h2"}
_IGNORED_LOCK: Final = threading.Lock()
_VERDICTS: dict[str, bool] = {}  # logger name -> ignored?, so emit does one dict lookup


def ignore_logger(name: str) -> None:
    """Never send records of logger ``name`` (and its children) to Discord."""
    with _IGNORED_LOCK:
        _IGNORED.add(name)
        _VERDICTS.clear()


def _is_ignored(name: str) -> bool:
    verdict = _VERDICTS.get(name)
    if verdict is None:
        verdict = any(name == i or name.startswith(i + ".") for i in list(_IGNORED))
        if len(_VERDICTS) < 10_000:
            _VERDICTS[name] = verdict
    return verdict


class DiscordHandler(BlockingSend, logging.Handler):
    """Sends log records to Discord webhooks by alert type, from a background worker.

    Settings come from ``DISCORD_*`` environment variables (and ``.env``); keyword arguments
    override them (see docs/configuration.md). A bad configuration raises
    :class:`~discord_logging.errors.ConfigurationError` here, at start-up; after that nothing
    the handler does raises into the application.
    """

    # Class-level defaults: logging.shutdown() flushes and closes even a handler whose
    # __init__ failed on a bad setting, and that must not raise at exit.
    _worker: Worker | None = None
    _closed = False
    _pid = -1
    store: Store | None = None
    _kept_at_close: int | None = None

    def __init__(
        self,
        level: int | str = logging.NOTSET,
        *,
        webhooks: Mapping[str, str] | None = None,
        routes: Mapping[str, str] | str | None = None,
        allowed_hosts: list[str] | str | None = None,
        store_path: str | os.PathLike[str] | None = None,
        rate_limit: int | None = None,
        retry_attempts: int | None = None,
        timeout: float | None = None,
        queue_size: int | None = None,
        aggregate_window: float | None = None,
        templates_dir: str | os.PathLike[str] | None = None,
        app_name: str | None = None,
        username: str | None = None,
        avatar_url: str | None = None,
        mentions: Mapping[str, Any] | str | None = None,
        close_timeout: float | None = None,
        attach_full_text: bool | None = None,
        history_retention_days: float | None = None,
        history_max_bytes: int | None = None,
        history_export_dir: str | os.PathLike[str] | None = None,
        global_rate_limit: int | None = None,
        redis_url: str | None = None,
        fleet_size: int | None = None,
        dead_letters: DeadLetterSink | None = None,
        engine_options: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(level)
        self.settings: DiscordSettings = load_settings(
            webhooks=webhooks,
            routes=routes,
            allowed_hosts=allowed_hosts,
            store_path=store_path,
            rate_limit=rate_limit,
            retry_attempts=retry_attempts,
            timeout=timeout,
            queue_size=queue_size,
            aggregate_window=aggregate_window,
            templates_dir=templates_dir,
            app_name=app_name,
            username=username,
            avatar_url=avatar_url,
            mentions=mentions,
            close_timeout=close_timeout,
            attach_full_text=attach_full_text,
            history_retention_days=history_retention_days,
            history_max_bytes=history_max_bytes,
            history_export_dir=history_export_dir,
            global_rate_limit=global_rate_limit,
            redis_url=redis_url,
            fleet_size=fleet_size,
        )
        self.router = Router(self.settings.routes, self.settings.webhook_urls)
        self._dead_letters = dead_letters
        self._engine_options = dict(engine_options or {})
        self._exc_formatter = logging.Formatter()
        self._start_lock = threading.Lock()
        self._closed = False
        self._fresh_process()
        self._make_notifier()  # validates every template now, not at 3 a.m.
        _register_fork_hook(self)

    # -- process state (rebuilt in a forked child) -------------------------------------------

    def _fresh_process(self) -> None:
        self._pid = os.getpid()
        self._stats = DeliveryStats()
        self._worker: Worker | None = None
        self._start_failed = False
        # A forked child opens the store anew: SQLite connections must not cross a fork.
        self.store: Store | None = None
        if self._dead_letters is not None:
            self.dead_letters: DeadLetterSink = self._dead_letters
        else:
            s = self.settings
            self.store = Store(
                s.store_path,
                retention_days=s.history_retention_days,
                max_bytes=s.history_max_bytes,
                export_dir=s.history_export_dir,
                stats=self._stats,
            )
            self.dead_letters = self.store.dead_letters

    def _after_fork_in_child(self) -> None:
        """The child gets a fresh worker, client and empty queue; the parent's are not touched."""
        self._start_lock = threading.Lock()
        self._fresh_process()

    def _make_notifier(self) -> Notifier:
        options = dict(self._engine_options)
        # Every process using this store directory shares Discord's limits through it.
        options.setdefault("store_dir", self._store_dir())
        return Notifier(
            self.settings,
            dead_letters=self.dead_letters,
            stats=self._stats,
            listeners=[self.store.record] if self.store is not None else [],
            **options,
        )

    def _store_dir(self) -> Path | None:
        store = self.store
        return store.path if store is not None and not store.degraded else None

    def _running_worker(self) -> Worker | None:
        if self._pid != os.getpid():  # second layer of fork safety, if the hook did not run
            self._after_fork_in_child()
        worker = self._worker
        if worker is not None:
            return worker
        with self._start_lock:
            if self._worker is None and not self._start_failed and not self._closed:
                worker = Worker(
                    self._make_notifier,
                    aggregate_window=self.settings.aggregate_window,
                    stats=self._stats,
                    on_thread_exit=self.store.release_thread if self.store else None,
                )
                try:
                    worker.start()
                except RuntimeError:  # "can't create new thread at interpreter shutdown"
                    self._start_failed = True
                    return None
                self._worker = worker
            return self._worker

    # -- the logging path --------------------------------------------------------------------

    def handle(self, record: logging.LogRecord) -> logging.LogRecord | bool:  # type: ignore[override]
        """Filter and emit without taking the handler lock: ``emit`` is thread-safe, and the
        worker thread's own records must never wait for a lock a caller holds."""
        verdict = self.filter(record)
        if isinstance(verdict, logging.LogRecord):  # Python 3.12+: a filter may replace it
            record = verdict
        if verdict:
            self.emit(record)
        return verdict

    def emit(self, record: logging.LogRecord) -> None:
        """Route, snapshot and hand over ``record``; never blocks, never raises."""
        try:
            if _is_ignored(record.name) or getattr(ON_WORKER_THREAD, "active", False):
                return
            alert_type = self.router.alert_type(record)
            notification = snapshot(record, alert_type, self._exc_formatter)
            worker = self._worker if self._pid == os.getpid() else None
            if worker is None:
                worker = self._running_worker()
            if worker is None or not worker.put(notification):
                # Counted as dropped (not emitted): emitted + dropped == records handled.
                reason = "closed" if self._closed or worker is None else "handoff_full"
                self._stats.dropped(reason, alert_type)
        except RecursionError:
            raise
        except Exception:  # noqa: BLE001 - the logging contract: report, never raise
            self.handleError(record)

    # -- flush and close (never take self.lock: logging.shutdown holds it) -------------------

    def flush(self, timeout: float | None = None) -> bool:  # type: ignore[override]
        """Wait until everything emitted so far was delivered or kept; True if so in time."""
        worker = self._worker
        if worker is None or self._pid != os.getpid():
            return True
        return worker.flush(self.settings.close_timeout if timeout is None else timeout)

    def close(self) -> None:
        """Deliver what can be within ``close_timeout``; keep the rest as dead letters.
        Idempotent. Pending counts go to stderr."""
        if self._closed:
            return
        self._closed = True
        worker = self._worker
        if worker is not None and self._pid == os.getpid():
            left = worker.stop(self.settings.close_timeout)
            kept = len(self.dead_letters)
            if left or kept:
                durable = self.store is not None and not self.store.degraded
                where = f"the store at {self.store.path}" if durable and self.store else "memory"
                print(
                    f"discord-logging: {left} notification(s) not delivered by the close "
                    f"deadline; {kept} dead letter(s) kept in {where}",
                    file=sys.stderr,
                )
        alive = worker is not None and worker.thread.is_alive()
        if self.store is not None and self._pid == os.getpid() and not alive:
            self._kept_at_close = len(self.dead_letters)
            self.store.close()  # never under a worker that is still writing
        super().close()

    # -- inspection and non-logging use ------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        """Counters (emitted, delivered, aggregated, dead-lettered, dropped by reason, ...)."""
        worker = self._worker
        depth = worker.queue_depth() if worker is not None else 0
        # After close the store is closed: report what it held then, without reopening it.
        kept = self._kept_at_close if self._kept_at_close is not None else len(self.dead_letters)
        return self._stats.snapshot(queue_depth=depth, dead_letters_kept=kept)

    def _sending_worker(self) -> Worker:
        worker = self._running_worker()
        if worker is None:
            raise RuntimeError("the handler is closed")
        return worker

    def __repr__(self) -> str:
        level = logging.getLevelName(self.level)
        return f"<DiscordHandler {level} webhooks={sorted(self.settings.webhook_urls)}>"


_HANDLERS: weakref.WeakSet[DiscordHandler] = weakref.WeakSet()
_HOOK_INSTALLED = False


def _after_fork_in_child() -> None:
    for handler in list(_HANDLERS):
        handler._after_fork_in_child()


def _register_fork_hook(handler: DiscordHandler) -> None:
    """One process-wide hook; handlers are held weakly so the hook keeps none alive."""
    global _HOOK_INSTALLED
    _HANDLERS.add(handler)
    if not _HOOK_INSTALLED and hasattr(os, "register_at_fork"):
        os.register_at_fork(after_in_child=_after_fork_in_child)
        _HOOK_INSTALLED = True
