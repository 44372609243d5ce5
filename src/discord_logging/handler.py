"""``DiscordHandler``: a stdlib logging handler that never blocks and never raises.

``emit`` filters, guards against recursion, routes, snapshots and hands over; everything else
(aggregation, rendering, rate limiting, HTTP, dead letters) happens on the worker thread.

So does the start-up: the constructor only records its arguments and starts the worker, which
loads the settings (pydantic), checks the templates (Jinja2) and opens the client (httpx) and
the store (diskcache). None of those is imported on the caller's thread, so a cron script's
first ``DiscordHandler(...)`` costs it milliseconds, not the ~0.8 s those imports take.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, TypeVar

from . import lifecycle
from .capture.routing import Router, requested_alert_type
from .capture.snapshot import RecordSnapshot, snapshot
from .deadletters import DeadLetterSink
from .delivery.blocking import BlockingSend
from .delivery.worker import ON_WORKER_THREAD, START_WAIT, Worker
from .errors import ConfigurationError
from .stats import DeliveryStats
from .wording import counted

if TYPE_CHECKING:  # pydantic, httpx, Jinja2, diskcache: loaded on the worker thread
    from .delivery.journaling import RecordJournal
    from .delivery.notifier import Notifier
    from .settings import DiscordSettings
    from .store import Store

# Until the settings are loaded: pydantic's default, and the values it reads as false.
_DEFAULT_CLOSE_TIMEOUT: Final = 5.0
_FALSE_WORDS: Final = frozenset({"0", "off", "f", "false", "n", "no"})
# A fork waits (only while the worker starts) for its imports, pydantic's and httpx's among
# them, to finish: a child must never inherit a half-imported module. About 0.8 s unloaded.
_FORK_WAITS_FOR_START: Final = 5.0

# Our own logger, and the HTTP stack's: httpx logs every request URL (token included) at INFO,
# and a record about sending a record must never be sent.
_IGNORED: set[str] = {"discord_logging", "httpx", "httpcore", "hpack", "h2"}
_IGNORED_LOCK: Final = threading.Lock()
_VERDICTS: dict[str, bool] = {}  # logger name -> ignored?, so emit does one dict lookup
_T = TypeVar("_T")


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
    _store: Store | None = None
    _store_wanted = False  # a forked child builds its store on first use, not in the hook
    _dead_letters: DeadLetterSink | None = None
    _kept_at_close: int | None = None
    _exit_left: float | None = None  # at exit: what is left of the one close_timeout
    _resume_after_fork: Callable[[], None] | None = None

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
        handle_sigterm: bool | None = None,
        attach_full_text: bool | None = None,
        history_retention_days: float | None = None,
        history_max_bytes: int | None = None,
        history_export_dir: str | os.PathLike[str] | None = None,
        dead_letter_retention_days: float | None = None,
        dead_letter_max_bytes: int | None = None,
        global_rate_limit: int | None = None,
        redis_url: str | None = None,
        fleet_size: int | None = None,
        trace_url_template: str | None = None,
        incident_updates: str | None = None,
        incident_edit_interval: float | None = None,
        silent: Mapping[str, Any] | str | None = None,
        buttons: Mapping[str, Any] | str | None = None,
        forum: list[str] | str | None = None,
        forum_tags: Mapping[str, Any] | str | None = None,
        journal: bool | None = None,
        journal_max_bytes: int | None = None,
        dead_letters: DeadLetterSink | None = None,
        engine_options: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(level)
        # Checked and loaded on the worker thread (see the module docstring): a bad setting or
        # template is said there once on stderr, each record is then counted as dropped
        # (worker_failed), and wait_started() raises the ConfigurationError.
        self._options: dict[str, Any] = {
            "webhooks": webhooks,
            "routes": routes,
            "allowed_hosts": allowed_hosts,
            "store_path": store_path,
            "rate_limit": rate_limit,
            "retry_attempts": retry_attempts,
            "timeout": timeout,
            "queue_size": queue_size,
            "aggregate_window": aggregate_window,
            "templates_dir": templates_dir,
            "app_name": app_name,
            "username": username,
            "avatar_url": avatar_url,
            "mentions": mentions,
            "close_timeout": close_timeout,
            "handle_sigterm": handle_sigterm,
            "attach_full_text": attach_full_text,
            "history_retention_days": history_retention_days,
            "history_max_bytes": history_max_bytes,
            "history_export_dir": history_export_dir,
            "dead_letter_retention_days": dead_letter_retention_days,
            "dead_letter_max_bytes": dead_letter_max_bytes,
            "global_rate_limit": global_rate_limit,
            "redis_url": redis_url,
            "fleet_size": fleet_size,
            "trace_url_template": trace_url_template,
            "incident_updates": incident_updates,
            "incident_edit_interval": incident_edit_interval,
            "silent": silent,
            "buttons": buttons,
            "forum": forum,
            "forum_tags": forum_tags,
            "journal": journal,
            "journal_max_bytes": journal_max_bytes,
        }
        self._settings: DiscordSettings | None = None
        self._settings_error: ConfigurationError | None = None
        self._settings_lock = threading.Lock()
        self.router: Router | None = None
        self._dead_letters = dead_letters
        self._engine_options = dict(engine_options or {})
        self._exc_formatter = logging.Formatter()
        self._closed = False
        self._fresh_process()
        self._store_wanted = dead_letters is None  # opened with the settings, on the worker
        lifecycle.register(self)
        if _sigterm_wanted(handle_sigterm):
            lifecycle.drain_on_sigterm()
        # Started now, not on the first record: kept letters are redelivered without traffic.
        self._running_worker()

    # -- settings (loaded once, by whichever thread needs them first) -------------------------

    @property
    def settings(self) -> DiscordSettings:
        """The settings; waits for them to load (the worker loads them at start).

        Raises :class:`~discord_logging.errors.ConfigurationError` when they are bad."""
        settings = self._settings_if_loaded()
        return settings if settings is not None else self._load_settings()

    def _settings_if_loaded(self) -> DiscordSettings | None:
        """The settings once this process's worker has loaded them (waiting, bounded, while it
        starts); None when it could not. Never imports: exit hooks and signal handlers call
        it, and a second thread importing pydantic beside the worker can deadlock with it or
        be handed a half-imported module (a SIGTERM that lands in the middle of an import)."""
        worker = self._worker
        if (
            self._settings is None
            and worker is not None
            and self._pid == os.getpid()
            and threading.current_thread() is not worker.thread
        ):
            worker.wait_ready(START_WAIT)
        return self._settings

    def _load_settings(self) -> DiscordSettings:
        with self._settings_lock:
            if self._settings is None:
                if self._settings_error is not None:
                    raise ConfigurationError(str(self._settings_error))
                from .settings import load_settings

                try:
                    settings = load_settings(**self._options)
                    self.router = Router(settings.routes, settings.webhook_urls)
                except ConfigurationError as exc:
                    self._settings_error = exc
                    raise
                self._settings = settings
            return self._settings

    def wait_started(self, timeout: float = 10.0) -> None:
        """Wait until delivery has started: settings loaded, templates checked, store opened.

        Raises :class:`~discord_logging.errors.ConfigurationError` naming the setting to fix
        when it could not start (a deploy can fail fast on it, as ``discord-logging check``
        does), TimeoutError when it is not done within ``timeout``."""
        worker = self._running_worker()
        if worker is not None and not worker.wait_ready(timeout):
            raise TimeoutError(f"discord-logging did not start within {timeout} s")
        self.settings  # noqa: B018 - raises the settings' own error, in its own words
        if worker is None:
            return
        failure = worker.start_error
        if failure is not None:
            if isinstance(failure, ConfigurationError):
                raise ConfigurationError(str(failure))
            raise ConfigurationError(f"delivery could not start: {failure}")

    def _sigterm_drain_wanted(self) -> bool:
        """Whether this handler drains on SIGTERM: the setting (waiting for the worker's start
        to load it, as the drain would anyway; an opt-out in ``.env`` counts). None loaded
        (bad settings, no worker): there is nothing to drain."""
        settings = self._settings_if_loaded()
        return settings.handle_sigterm if settings is not None else False

    def _close_timeout(self) -> float:
        """``close_timeout``; pydantic's default when the settings are bad (close must work).
        Never imports (see _settings_if_loaded): close runs in exit hooks and signal handlers."""
        settings = self._settings_if_loaded()
        return settings.close_timeout if settings is not None else _DEFAULT_CLOSE_TIMEOUT

    # -- process state (rebuilt in a forked child) -------------------------------------------

    def _fresh_process(self) -> None:
        """Reset what belongs to one process. No I/O: the fork hook calls it."""
        # Reentrant: the SIGTERM drain (lifecycle) may run close() on the main thread while it
        # is inside a first emit that holds this lock to start the worker.
        self._start_lock = threading.RLock()
        self._store_lock = threading.Lock()
        self._pid = os.getpid()
        self._stats = DeliveryStats()
        self._worker: Worker | None = None
        self._start_failed = False
        self._exit_left = None

    def _new_store(self) -> Store | None:
        if self._dead_letters is not None:
            return None
        from .store import Store

        s = self.settings
        return Store(
            s.store_path,
            retention_days=s.history_retention_days,
            max_bytes=s.history_max_bytes,
            export_dir=s.history_export_dir,
            dead_letter_retention_days=s.dead_letter_retention_days,
            dead_letter_max_bytes=s.dead_letter_max_bytes,
            stats=self._stats,
        )

    def _before_fork(self) -> None:
        """In the parent, just before a fork: let a starting worker finish its imports, then
        hold its loop and its store thread outside any store call until the fork is done (the
        store writer's transactions are waited for by the lifecycle's fork gate)."""
        worker = self._worker
        if worker is not None and self._pid == os.getpid():
            worker.wait_started(_FORK_WAITS_FOR_START)
            self._resume_after_fork = worker.park(0.25)

    def _after_fork_in_parent(self) -> None:
        resume, self._resume_after_fork = self._resume_after_fork, None
        if resume is not None:
            resume()

    def _after_fork_in_child(self) -> None:
        """The child gets a fresh worker, client and empty queue; the parent's are not touched.

        Its store is built on first use (first record, ``stats()``): SQLite connections must
        not cross a fork, and opening one here could wait forever for a lock that a parent
        thread held at the fork. The inherited store is kept referenced, never closed or
        collected in the child, for the same reason, and so is the inherited worker (its
        notifier's limits connection). The worker starts on the first record:
        the parent serves the letters both share."""
        # The parent's threads (worker, store writer) do not exist here, so the SQLite
        # connections they kept in thread-locals become garbage. Closing a connection that
        # crossed a fork is not safe, so they are left to the collector; the fork hook gave
        # this child the filter that silences Python 3.13's "unclosed database" for them
        # (lifecycle._before_fork: they are dropped before any after-fork hook runs).
        if self._store is not None:
            _INHERITED.append(self._store)
        if self._worker is not None:  # its notifier holds the coordinator's SQLite connection
            _INHERITED.append(self._worker)
        self._store = None
        self._store_wanted = self._dead_letters is None
        self._kept_at_close = None
        self._resume_after_fork = None
        self._fresh_process()

    @property
    def store(self) -> Store | None:
        """The history and dead-letter store (None with a custom ``dead_letters`` sink)."""
        if self._store is None and self._store_wanted:
            # The settings first, outside the lock: on a caller's thread they may wait for the
            # worker's start, which opens the store under this lock (a deadlock otherwise).
            self.settings  # noqa: B018
            with self._store_lock:
                if self._store is None and self._store_wanted:
                    self._store = self._new_store()
                    self._store_wanted = False
        return self._store

    @property
    def dead_letters(self) -> DeadLetterSink:
        """Where undelivered notifications are kept."""
        if self._dead_letters is not None:
            return self._dead_letters
        store = self.store
        if store is None:  # __init__ failed on a bad setting
            raise RuntimeError("the handler has no store")
        return store.dead_letters

    def _make_notifier(self) -> Notifier:
        """On the worker thread: settings, store and templates are loaded and checked here."""
        from .delivery.notifier import Notifier

        self.settings  # noqa: B018 - a bad setting stops the start here, said once
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

    def _store_dir(self) -> Path:
        # The limits are shared through the store directory whatever keeps the letters (a
        # custom sink, a store degraded to memory): where the directory cannot be used either,
        # the host coordinator keeps to DISCORD_RATE_LIMIT // DISCORD_FLEET_SIZE, never the
        # whole limit beside the other processes.
        from .store import limits_directory

        return limits_directory(self.settings)

    def _make_journal(self, notifier: Notifier) -> RecordJournal | None:
        """This process's journal, built on the worker thread; none without the store (a
        custom ``dead_letters`` sink: its letters are not this library's to recover)."""
        from .delivery.journaling import open_journal

        store = self.store
        return open_journal(store, notifier, self._stats) if store is not None else None

    @staticmethod
    def _close_journal(worker: Worker | None) -> None:
        """After the store wrote its letters, which settled their records."""
        if worker is not None:
            worker.close_journal()

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
                    route=self._route_late,
                    stats=self._stats,
                    on_thread_exit=self._release_store_thread,
                    journal_factory=self._make_journal,
                )
                try:
                    worker.start()
                except RuntimeError:  # "can't create new thread at interpreter shutdown"
                    self._start_failed = True
                    return None
                self._worker = worker
                lifecycle.watch_process_end(self)
            return self._worker

    def _release_store_thread(self) -> None:
        store = self._store
        if store is not None:
            store.release_thread()

    def _route_late(self, record: RecordSnapshot) -> RecordSnapshot:
        """On the worker: the alert type of a record emitted before the settings loaded."""
        router = self.router
        # The worker takes records only once its notifier is built, after the router.
        assert router is not None
        return record._replace(alert_type=router.alert_type_for(record.logger, record.levelno))

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
            router = self.router
            if router is not None:
                alert_type = router.alert_type(record)
            else:  # settings not loaded yet: the logger-name rules are applied on the worker
                alert_type = requested_alert_type(record) or ""
            notification = snapshot(record, alert_type, self._exc_formatter, self.formatter)
            worker = self._worker if self._pid == os.getpid() else None
            if worker is None:
                worker = self._running_worker()
            if worker is None or not worker.put(notification):
                # Counted as dropped (not emitted): emitted + dropped == records handled.
                reason = (
                    "closed"
                    if self._closed or worker is None
                    else "worker_failed"
                    if worker.failed
                    else "handoff_full"
                )
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
        if timeout is None:
            return self._within_exit_budget(worker.flush)
        return worker.flush(timeout)

    def _within_exit_budget(self, wait: Callable[[float], _T]) -> _T:
        """Run ``wait(seconds)`` with ``close_timeout``; at exit, with what is left of the one
        ``close_timeout`` the exit drain began, and take the time it waited off it: the drain,
        ``logging.shutdown``'s flush and ``close`` (or the SIGTERM drain and its close) wait
        ``close_timeout`` in all, whatever Discord does (the request in flight is cut off at
        the close deadline)."""
        budget = self._close_timeout() if self._exit_left is None else self._exit_left
        started = time.monotonic()
        try:
            return wait(budget)
        finally:
            if self._exit_left is not None:
                self._exit_left = max(0.0, budget - (time.monotonic() - started))

    def _drain_before_exit(self) -> None:
        """At interpreter exit, before thread shutdown (see lifecycle.py), at SIGTERM and when
        a multiprocessing child ends: deliver what is pending while pools still work. Begins
        the exit's one ``close_timeout``, which the waits that follow share."""
        if self._closed or self._pid != os.getpid() or self._worker is None:
            return
        if self._exit_left is None:
            self._exit_left = self._close_timeout()
        self.flush()

    def _sigterm_survived(self) -> None:
        """The SIGTERM drain ran and the process goes on (pid 1, see lifecycle.py): the
        handler keeps working, and a later exit has its whole ``close_timeout`` again."""
        self._exit_left = None

    def close(self) -> None:
        """Deliver what can be within ``close_timeout`` (at exit, what the drain left of it);
        keep the rest as dead letters. Idempotent; starts no thread. Pending counts go to
        stderr."""
        if self._pid != os.getpid():
            self._after_fork_in_child()
        # Under _start_lock: an emit racing close either started its worker before (stopped
        # here) or sees _closed and starts none. Never self.lock: logging.shutdown holds it.
        with self._start_lock:
            if self._closed:
                return
            self._closed = True
            worker = self._worker
        left = self._within_exit_budget(worker.stop) if worker is not None else 0
        alive = worker is not None and worker.thread.is_alive()
        store = self._store
        if store is not None and not alive:
            self._kept_at_close = len(store.dead_letters)
            store.close()  # never under a worker that is still writing
            self._close_journal(worker)
        if worker is not None:
            self._report_at_close(left, store)
        super().close()

    def _report_at_close(self, left: int, store: Store | None) -> None:
        """One stderr line: what was not delivered, and where it is kept or that it is lost."""
        if store is None and self._dead_letters is None:  # never started: a bad setting
            return
        if store is None:
            kept = len(self.dead_letters)
            where = "kept in the dead-letter sink"
        elif store.degraded:
            # Only in memory: this process ends, and they with it.
            kept = store.memory_only
            where = f"LOST (the store at {store.path} could not be used; kept only in memory)"
        else:
            kept = len(store.dead_letters)
            where = f"kept in the store at {store.path}"
        evicted = self._stats.get("dead_letters_evicted")
        lost = f"; {evicted} more LOST (evicted from memory)" if evicted else ""
        if left or kept or evicted:
            print(
                f"discord-logging: {counted(left, 'notification')} not delivered by the close "
                f"deadline; {counted(kept, 'dead letter')} {where}{lost}",
                file=sys.stderr,
            )

    # -- inspection and non-logging use ------------------------------------------------------

    @property
    def worker(self) -> Worker | None:
        """This process's background worker, None until it starts: for health checks."""
        return self._worker if self._pid == os.getpid() else None

    def stats(self) -> dict[str, Any]:
        """Counters (emitted, delivered, aggregated, dead-lettered, dropped by reason, ...)."""
        worker = self._worker
        depth = worker.queue_depth() if worker is not None else 0
        # After close the store is closed: report what it held then, without reopening it.
        kept = self._kept_at_close
        if kept is None:
            try:
                kept = len(self.dead_letters)
            except ConfigurationError:  # never started: nothing was kept
                kept = 0
        return self._stats.snapshot(queue_depth=depth, dead_letters_kept=kept)

    def _settings_for_send(self) -> DiscordSettings:
        return self.settings

    def _sending_worker(self) -> Worker:
        worker = self._running_worker()
        if worker is None:
            raise RuntimeError("the handler is closed")
        return worker

    def __repr__(self) -> str:
        level = logging.getLevelName(self.level)
        settings = self._settings  # never waits for (or fails on) loading
        webhooks = sorted(settings.webhook_urls) if settings is not None else "(loading)"
        return f"<DiscordHandler {level} webhooks={webhooks}>"


def _sigterm_wanted(handle_sigterm: bool | None) -> bool:
    """Whether to install the SIGTERM drain, decided without loading the settings: the
    argument, else ``DISCORD_HANDLE_SIGTERM``. An opt-out written only in ``.env`` is known
    once the settings load; the drain then does nothing and SIGTERM ends the process as
    before (see lifecycle.drain_on_sigterm)."""
    if handle_sigterm is not None:
        return handle_sigterm
    value = os.environ.get("DISCORD_HANDLE_SIGTERM", "")
    return value.strip().lower() not in _FALSE_WORDS


# Stores and workers inherited over a fork: referenced so that the child never collects (and
# closes) the parent's SQLite connections; see DiscordHandler._after_fork_in_child.
_INHERITED: list[object] = []
