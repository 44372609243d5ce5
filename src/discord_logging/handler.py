"""``DiscordHandler``: a stdlib logging handler that never blocks and never raises.

``emit`` filters, guards against recursion, routes, snapshots and hands over; everything else
(aggregation, rendering, rate limiting, HTTP, dead letters) happens on the worker thread.

The constructor validates every setting on the caller's thread (a bad one raises
:class:`ConfigurationError` there, so ``dictConfig`` fails at once), then starts the worker,
which opens the journal first and builds the delivery engine (httpx, Jinja2, diskcache) on a
short-lived start thread meanwhile. Nothing heavy is imported on the caller's thread, and
nothing waits for the worker's start there (docs/architecture.md, "Start-up").
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Final, TypeVar

from . import lifecycle
from ._controls import Controls
from ._engine import EngineParts
from .capture.guard import is_ignored
from .capture.routing import Router
from .capture.snapshot import snapshot
from .config.startup import check_user_templates, say_unknown_variables
from .deadletters import DeadLetterSink
from .delivery.blocking import BlockingSend
from .delivery.memory import refusal
from .delivery.threads import holds_logging_lock
from .delivery.worker import ON_WORKER_THREAD, Worker
from .errors import ConfigurationError
from .muting import control as muting
from .settings import DiscordSettings, load_settings
from .stats import GAUGE_SOURCES, DeliveryStats
from .store._paths import refuse_unsafe_store, store_directory
from .wording import counted, write_line

if TYPE_CHECKING:  # httpx, Jinja2, diskcache: loaded on the worker's start thread
    from .store import Store

# A fork waits (only while the worker starts) for its imports, httpx's among them, to
# finish: a child must never inherit a half-imported module. About 0.3 s unloaded.
_FORK_WAITS_FOR_START: Final = 5.0

_T = TypeVar("_T")
_NOT_SETTINGS: Final = frozenset({"self", "level", "dead_letters", "engine_options", "__class__"})


class DiscordHandler(EngineParts, BlockingSend, Controls, logging.Handler):
    """Sends log records to Discord webhooks by alert type, from a background worker.

    Settings come from ``DISCORD_*`` environment variables (and ``.env``); keyword arguments
    override them (see docs/configuration.md). A bad configuration raises
    :class:`~discord_logging.errors.ConfigurationError` here, on the caller's thread (so
    ``dictConfig`` fails naming the handler); after that nothing the handler does raises into
    the application.
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
    _closed_while_starting = False
    _exit_deadline: float | None = None  # at exit: the one deadline (time.monotonic())
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
        quiet_hours: str | None = None,
        journal: bool | None = None,
        journal_max_bytes: int | None = None,
        memory_max_records: int | None = None,
        dead_letters: DeadLetterSink | None = None,
        engine_options: Mapping[str, Any] | None = None,
    ) -> None:
        # Every keyword but those is a setting, named as load_settings names it.
        options = {k: v for k, v in locals().items() if k not in _NOT_SETTINGS}
        # Validated here, on the caller's thread, before the handler exists for logging: a
        # bad setting raises now (dictConfig names the handler) and nothing is registered.
        settings = load_settings(**options)
        if dead_letters is None:  # another user's store: refused here, not found later
            refuse_unsafe_store(store_directory(settings.store_path))
        check_user_templates(
            settings, "templates_dir" if templates_dir else "DISCORD_TEMPLATES_DIR"
        )
        router = Router(settings.routes, settings.webhooks)
        super().__init__(level)
        self._settings: DiscordSettings = settings
        self.router: Router = router
        self._dead_letters = dead_letters
        self._engine_options = dict(engine_options or {})
        self._exc_formatter = logging.Formatter()
        self._closed = False
        self._fresh_process()
        self._store_wanted = dead_letters is None  # opened on the worker's start thread
        say_unknown_variables(settings)
        lifecycle.register(self)
        GAUGE_SOURCES.add(self)  # the metrics' gauges (discord_logging.metrics) read it
        if settings.handle_sigterm:
            lifecycle.drain_on_sigterm()
        # Started now, not on the first record: kept letters are redelivered without traffic.
        self._running_worker()

    # -- settings (validated by the constructor) ---------------------------------------------

    @property
    def settings(self) -> DiscordSettings:
        """The settings, validated when the handler was created."""
        return self._settings

    def wait_started(self, timeout: float = 10.0) -> None:
        """Wait until delivery has started: store opened, client ready, lanes running.

        Raises :class:`~discord_logging.errors.ConfigurationError` when it could not start
        (certificates that cannot be read, say), TimeoutError when it is not done within
        ``timeout``. Settings were checked when the handler was created."""
        worker = self._running_worker()
        if worker is None:
            return
        if not worker.wait_ready(timeout):
            raise TimeoutError(f"discord-logging did not start within {timeout} s")
        failure = worker.start_error
        if failure is not None:
            if isinstance(failure, ConfigurationError):
                raise ConfigurationError(str(failure))
            raise ConfigurationError(f"delivery could not start: {failure}")

    def _sigterm_drain_wanted(self) -> bool:
        """Whether this handler drains on SIGTERM (``DISCORD_HANDLE_SIGTERM``)."""
        return self._settings.handle_sigterm

    def _close_timeout(self) -> float:
        return self._settings.close_timeout

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
        self._exit_deadline = None

    def _before_fork(self) -> None:
        """In the parent, just before a fork: let a starting worker finish its imports, then
        hold its loop and its store's thread outside any store call until the fork is done
        (other transactions are waited for by the lifecycle's fork gate)."""
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
                    stats=self._stats,
                    on_thread_exit=self._after_worker_ended,
                    journal_factory=self._make_journal,
                    memory=self._memory_bound(),
                )
                # Known before its thread runs: the start thread attaches the worker's journal
                # to the notifier it builds (_make_notifier reads it from here).
                self._worker = worker
                worker.mutes = muting.gate_for(self._settings, self._stats)
                try:
                    worker.start()
                except RuntimeError:  # "can't create new thread at interpreter shutdown"
                    self._worker = None
                    self._start_failed = True
                    return None
                lifecycle.watch_process_end(self)
            return self._worker

    def _after_worker_ended(self) -> None:
        """On the worker thread, as it ends: close what a close during its start left open."""
        store = self._store
        if store is not None:
            store.release_thread()
        worker = self._worker
        if worker is not None and worker.mutes is not None:
            worker.mutes.close()  # its last tallies written, its table closed on its thread
        if self._closed_while_starting and self._pid == os.getpid() and worker is not None:
            self._closed_while_starting = False
            self._finish_close(worker, worker.left_at_close, ending=True)

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
            if is_ignored(record.name) or getattr(ON_WORKER_THREAD, "active", False):
                return
            alert_type = self.router.alert_type(record)
            worker = self._worker if self._pid == os.getpid() else None
            if worker is None:
                worker = self._running_worker()
            # Past the memory bound a record costs its count only, not a snapshot.
            if (
                worker is None
                or not worker.memory.room()
                or not worker.put(snapshot(record, alert_type, self._exc_formatter, self.formatter))
            ):
                # Counted as dropped (not emitted): emitted + dropped == records handled.
                failed = None if worker is None else worker.failed
                self._stats.dropped(refusal(self._closed, failed), alert_type)
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
        wait_start = not holds_logging_lock()
        deadline = self._deadline() if timeout is None else time.monotonic() + timeout
        return worker.flush(deadline, wait_start=wait_start)

    def _deadline(self) -> float:
        """At exit, the one deadline the first exit path fixed: the drain, ``logging.shutdown``'s
        flush and ``close`` (or the SIGTERM drain and its close) all end by it, whatever
        Discord does (the request in flight is cut off there). Outside an exit, a fresh one,
        ``close_timeout`` from now (docs/architecture.md, "Fewer moving parts")."""
        if self._exit_deadline is not None:
            return self._exit_deadline
        return time.monotonic() + self._close_timeout()

    def _within_exit_budget(self, wait: Callable[[float], _T]) -> _T:
        """Run ``wait(seconds)`` with the seconds left until :meth:`_deadline`."""
        return wait(max(0.0, self._deadline() - time.monotonic()))

    def _drain_before_exit(self) -> None:
        """At interpreter exit, before thread shutdown (see lifecycle.py), at SIGTERM and when
        a multiprocessing child ends: deliver what is pending while pools still work. Begins
        the exit's one ``close_timeout``, which the waits that follow share."""
        if self._pid != os.getpid() or self._worker is None:
            return
        if self._exit_deadline is None:
            self._exit_deadline = time.monotonic() + self._close_timeout()
        if self._closed:
            if self._closed_while_starting:  # it delivers in the background: let it end
                self._within_exit_budget(self._worker.thread.join)
            return
        # Outside logging's lock here (the thread-shutdown hook, a signal handler, a child's
        # finalizer): the exit waits for a start still under way, within its one budget.
        self._within_exit_budget(self._worker.wait_ready)
        self.flush()

    def _sigterm_survived(self) -> None:
        """The SIGTERM drain ran and the process goes on (pid 1, see lifecycle.py): the
        handler keeps working, and a later exit has its whole ``close_timeout`` again."""
        self._exit_deadline = None

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
        if worker is not None and not worker.ready and holds_logging_lock():
            # Still starting, and this thread holds logging's lock (a second dictConfig), which
            # the start's imports may need: never waited for here. It delivers by the close
            # deadline once started, then ends and closes the store itself.
            self._closed_while_starting = True
            worker.stop(self._deadline(), join_start=False)
            super().close()
            return
        left = worker.stop(self._deadline()) if worker is not None else 0
        self._finish_close(worker, left)
        super().close()

    def _finish_close(self, worker: Worker | None, left: int, *, ending: bool = False) -> None:
        """Close the store and the journal once the worker no longer writes (``ending``: on
        its own thread, as it ends), then say what was kept."""
        alive = worker is not None and not ending and worker.thread.is_alive()
        store = self._store
        if store is not None and not alive:
            self._kept_at_close = len(store.dead_letters)
            store.close()  # never under a worker that is still writing
            self._close_journal(worker)
        if worker is not None:
            self._report_at_close(left, store)

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
        else:  # this process's own: not its siblings' in a shared store (issue 29)
            kept = store.dead_letters.kept_by_this_process()
            where = f"kept in the store at {store.path}"
        evicted = self._stats.get("dead_letters_evicted")
        lost = f"; {evicted} more LOST (evicted from memory)" if evicted else ""
        cut = f" ({left} of them cut off by the close deadline)" if left else ""
        if kept or evicted:
            write_line(f"discord-logging: {counted(kept, 'dead letter')} {where}{cut}{lost}")

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


# Stores and workers inherited over a fork: referenced so that the child never collects (and
# closes) the parent's SQLite connections; see DiscordHandler._after_fork_in_child.
_INHERITED: list[object] = []
