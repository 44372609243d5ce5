"""The background worker: one daemon thread, one asyncio loop, the delivery engine.

Callers hand notifications over with :meth:`Worker.put` (a deque append; no lock, no I/O).
The worker aggregates storms and feeds the notifier's lanes. Waiting for it (``flush``,
``stop``) uses only its own events, never the logging handler's lock, because
``logging.shutdown`` calls ``flush`` and ``close`` with that lock held.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextlib
import threading
import time
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, Final, TypeVar

from ..capture.routing import level_alert_type
from ..capture.snapshot import RecordSnapshot, snapshot_fingerprint, to_notification
from ..config.alert_options import EDIT
from ..fork_gate import nothing_parked, park_between_calls
from ..notification import Notification, NotificationResult
from ..redaction import redact
from ..stats import DeliveryStats
from ..wording import write_line
from .aggregation import Release, StormAggregator
from .memory import TAKE_AT_ONCE, MemoryBound
from .start import build_while_journaling
from .threads import run_exit_safe

if TYPE_CHECKING:  # httpx, Jinja2, diskcache: imported on the start thread only
    from ..muting.gate import MuteGate
    from .journaling import RecordJournal
    from .notifier import Notifier

THREAD_NAME: Final = "discord-logging"
# Set on the worker thread before anything there can log: the handler's recursion guard.
ON_WORKER_THREAD: Final = threading.local()
# How long a caller waits for the worker's start (settings, store, client: ~0.6 s unloaded,
# a few seconds on a loaded machine) before it is told the worker is not running.
START_WAIT: Final = 10.0
T = TypeVar("T")


class Worker:
    """Runs a :class:`Notifier` on a daemon thread and feeds it what callers ``put``."""

    mutes: MuteGate | None = None  # the mutes it honours, set by the handler (muting/gate.py)

    def __init__(
        self,
        notifier_factory: Callable[[], Notifier],
        *,
        aggregate_window: float | None = None,
        edit_interval: float | None = None,
        stats: DeliveryStats,
        clock: Callable[[], float] = time.monotonic,
        memory: MemoryBound | None = None,
        on_thread_exit: Callable[[], None] | None = None,
        journal_factory: Callable[[], RecordJournal | None] | None = None,
    ) -> None:
        # The journal is opened first on the worker thread (light), the notifier built on a
        # short-lived start thread meanwhile (the heavy imports: httpx, Jinja2, diskcache),
        # while the worker journals what is handed over (docs/architecture.md, "Start-up").
        # With no aggregate_window, storms are grouped as the notifier's settings say.
        self._notifier_factory = notifier_factory
        self._on_thread_exit = on_thread_exit
        self._journal_factory = journal_factory
        self.journal: RecordJournal | None = None  # built on the worker thread
        self._notifier: Notifier | None = None
        self.stats = stats
        self._clock = clock
        self._aggregator: StormAggregator[RecordSnapshot] = StormAggregator(
            aggregate_window or 0.0, edit_interval=edit_interval
        )
        self._aggregate_from_settings = aggregate_window is None
        self._handoff: collections.deque[RecordSnapshot] = collections.deque()
        self.memory = memory or MemoryBound()  # docs/architecture.md, "Memory in a flood"
        self.memory.handoff = self._handoff
        # Taken from the hand-off and journaled while the notifier was being built.
        self._early: collections.deque[RecordSnapshot] = collections.deque()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._sleeping = False
        self._stopping = False
        self._close_deadline = 0.0  # time.monotonic(), given by stop()
        self._ready = threading.Event()
        self._started = threading.Event()  # lanes run: every start-up import is done
        self._done = threading.Event()
        self._sealed = False  # the final sweep of the hand-off began: put() must take back
        self.left_at_close = 0
        self.failed = False  # delivery could not start: records are counted as dropped
        self.start_error: Exception | None = None  # why, for the handler's wait_started()
        self.thread = threading.Thread(target=self._run, name=THREAD_NAME, daemon=True)

    # -- caller side (any thread) ------------------------------------------------------------

    def start(self) -> None:
        """Start the thread (may raise RuntimeError at interpreter shutdown).

        Does not wait for the loop: callers may hold a logging lock that the new thread's
        first log record (asyncio's debug line) would need. Records put before the loop runs
        wait in the hand-off and are taken first."""
        self.thread.start()

    def wait_started(self, timeout: float) -> None:
        """Wait (bounded) until the worker's start-up imports are done. Called before a fork:
        a child forked while this thread is half-way through importing httpcore inherits a
        half-initialised module and can never send."""
        if self.thread.is_alive() and threading.current_thread() is not self.thread:
            self._started.wait(timeout)

    def wait_ready(self, timeout: float) -> bool:
        """Wait until the notifier is built (or could not be); True if so within ``timeout``."""
        return self._ready.wait(timeout)

    @property
    def ready(self) -> bool:
        """Whether the start is over (the lanes run, or delivery could not start): until then
        nothing is in flight, and nobody waits for it under logging's lock."""
        return self._ready.is_set()

    def park(self, timeout: float) -> Callable[[], None]:
        """Hold the worker's loop between two callbacks until the returned function is called
        (at most ``timeout`` seconds each way), then the notifier's store thread. Called
        before a fork: neither is then inside a store call, so the child never inherits
        SQLite's locks held mid-call."""
        loop = self._loop
        if loop is None or self._done.is_set() or threading.current_thread() is self.thread:
            return nothing_parked
        try:
            resume_loop = park_between_calls(loop.call_soon_threadsafe, timeout)
        except RuntimeError:  # the loop closed meanwhile
            return nothing_parked
        notifier = self._notifier
        resume_store = notifier.park_store(timeout) if notifier is not None else nothing_parked

        def resume_all() -> None:
            resume_store()
            resume_loop()

        return resume_all

    @property
    def alive(self) -> bool:
        """Whether the thread runs and takes records."""
        return self.thread.is_alive() and not self._stopping

    def put(self, record: RecordSnapshot) -> bool:
        """Hand over ``record`` without blocking; False when it had to be refused."""
        if self._stopping or not self.memory.room():
            return False
        self._handoff.append(record)
        if self._sealed:
            # stop() raced us and the worker's last sweep may be over: take the record back
            # (the caller counts it as dropped), unless the sweep already counted it.
            try:
                self._handoff.remove(record)
            except ValueError:
                return True
            return False
        if self._sleeping:
            self._sleeping = False
            loop = self._loop
            if loop is not None:
                # RuntimeError: the loop closed under us; the record is counted at stop.
                with contextlib.suppress(RuntimeError):
                    loop.call_soon_threadsafe(self._set_wake)
        return True

    @property
    def backlog(self) -> int:
        """Records handed over and not yet taken by the worker."""
        return len(self._handoff) + len(self._early)

    @property
    def notifier(self) -> Notifier:
        """The delivery engine (exists once the worker's loop runs)."""
        if self._notifier is None:
            self._ready.wait(START_WAIT)
        if self._notifier is None:
            raise RuntimeError("the discord-logging worker is not running")
        return self._notifier

    def queue_depth(self) -> int:
        """Records waiting anywhere: hand-off, lanes, in flight."""
        lanes = self._notifier.queue_depth() if self._notifier is not None else 0
        return len(self._handoff) + len(self._early) + lanes

    def call(self, factory: Callable[[], Coroutine[Any, Any, T]], timeout: float | None) -> T:
        """Run a coroutine on the worker's loop and wait for its result (not from the worker)."""
        self._ready.wait(START_WAIT)
        loop = self._loop
        if loop is None or self._done.is_set() or self.failed:
            raise RuntimeError("the discord-logging worker is not running")
        future = asyncio.run_coroutine_threadsafe(factory(), loop)
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise TimeoutError("discord-logging did not answer in time") from None
        except concurrent.futures.CancelledError:  # close() ended the loop meanwhile
            raise RuntimeError("the discord-logging worker stopped") from None

    def deliver(self, notification: Notification, timeout: float) -> NotificationResult:
        """Send one notification through the worker's notifier and wait for its outcome."""
        return self.call(lambda: self.notifier.send_notification(notification), timeout)

    def flush(self, deadline: float, *, wait_start: bool = True) -> bool:
        """Wait until everything handed over was delivered or kept; True if so by ``deadline``
        (``time.monotonic()``). Without ``wait_start`` (the caller holds logging's lock, which
        the start's imports may need) a worker still starting is not waited for: False if it
        holds records."""
        if not wait_start and not self._ready.is_set():
            return self.queue_depth() == 0
        self._ready.wait(max(0.0, deadline - time.monotonic()))
        if self.failed:
            return False  # what was handed over was dropped, not delivered or kept

        async def drained() -> bool:
            while self._handoff or self._early:  # taken here, as the loop would: no polling
                self._take()
                await asyncio.sleep(0)  # let the lanes run between large batches
            self._submit(self._aggregator.release_repeats(time.time()))
            return await self.notifier.flush(deadline=deadline)

        try:
            return self.call(drained, max(0.0, deadline - time.monotonic()) + 0.5)
        except (RuntimeError, TimeoutError):
            notifier = self._notifier
            if notifier is None:
                return self.queue_depth() == 0
            sink = notifier.dead_letters
            return self.queue_depth() == 0 and (sink.durable or len(sink) == 0)

    def stop(self, deadline: float, *, join_start: bool = True) -> int:
        """Deliver what can be by ``deadline`` (``time.monotonic()``: the exit's one deadline,
        docs/architecture.md, "Fewer moving parts"), hand the rest to the dead letters, end
        the thread. Returns how many records went to the dead letters because time ran out.
        Without ``join_start`` (the caller holds logging's lock) a worker still starting is
        not waited for: it stops by the same deadline on its own."""
        if not self._stopping:
            self._close_deadline = deadline
            self._stopping = True
            loop = self._loop
            if loop is not None and not self._done.is_set():
                with contextlib.suppress(RuntimeError):
                    loop.call_soon_threadsafe(self._set_wake)
        if not join_start and not self._ready.is_set():
            # Still starting: its imports may need logging's lock, which the caller holds. It
            # delivers by the deadline once started, in the background.
            return 0
        if self.thread.is_alive() and threading.current_thread() is not self.thread:
            # Beyond the deadline only for writing what was taken to the store: records
            # are never abandoned half-way (a huge burst may take a few seconds more).
            self.thread.join(max(0.0, self._close_deadline - time.monotonic()) + 30.0)
        return self.left_at_close

    # -- worker side -------------------------------------------------------------------------

    def _set_wake(self) -> None:
        if self._wake is not None:
            self._wake.set()

    def _run(self) -> None:
        ON_WORKER_THREAD.active = True
        try:
            self._open_journal()
            notifier = self._build_while_journaling()
            if notifier is not None:
                run_exit_safe(lambda: self._main(notifier), f"{THREAD_NAME}-dns")
        finally:
            if self._on_thread_exit is not None:
                with contextlib.suppress(Exception):  # e.g. close this thread's connections
                    self._on_thread_exit()
            self._done.set()
            self._ready.set()
            self._started.set()

    def _build_while_journaling(self) -> Notifier | None:
        """The notifier, built on the start thread while this thread journals what is handed
        over (see :func:`.start.build_while_journaling`); None if it could not be built."""
        notifier, error = build_while_journaling(
            self._notifier_factory, self._journal_early, f"{THREAD_NAME}-start"
        )
        if notifier is None:
            self._cannot_start(error or RuntimeError("the notifier could not be built"))
            return None
        if self._aggregate_from_settings:  # incidents kept current by edits, or a 2nd message
            s = notifier.settings
            interval = s.incident_edit_interval if s.incident_updates == EDIT else None
            self._aggregator = StormAggregator(s.aggregate_window, edit_interval=interval)
        if self.journal is not None:
            self._aggregator.on_fold = self.journal.folded
        return notifier

    def _journal_early(self) -> None:
        """Journal what was handed over while the notifier is built, keeping it in order."""
        journal = self.journal
        if journal is None or not self._handoff:
            return
        batch = self.memory.take(self._handoff, TAKE_AT_ONCE)
        journal.take(batch)
        self._early.extend(batch)

    async def _main(self, notifier: Notifier) -> None:
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        try:
            # Lanes start now, not on the first record: each refills from the dead letters at
            # once, so what an earlier run kept is redelivered without waiting for traffic.
            notifier.start()
        except Exception as exc:  # noqa: BLE001 - said once; every record is then counted
            self._cannot_start(exc)
            return
        finally:
            self._ready.set()
            # Only now: starting the lanes imports the coordination backend's module, and a
            # fork during that import leaves the child waiting on its lock for good.
            self._started.set()
        self._notifier = notifier
        while not self._stopping:
            self._take()
            if self.journal is not None:
                self.journal.look_for_dead()
            self._release_summaries()
            if self._handoff or self._early:
                await asyncio.sleep(0)  # let the lanes run between large batches
                continue
            await self._nap()
        while self._handoff or self._early:  # all handed over is accounted for
            self._take()
        self._submit(self._aggregator.drain())
        self.left_at_close = await self.notifier.aclose(deadline=self._close_deadline)
        if self.journal is not None:
            self.journal.write_settles()
        self._seal()

    def _open_journal(self) -> None:
        """Open the journal first, before anything heavy is imported, so that it covers a
        record from ``emit()`` on. A journal that cannot be opened is counted
        (``journal_errors``); delivery goes on without it."""
        if self._journal_factory is None:
            return
        try:
            self.journal = self._journal_factory()
        except Exception:  # noqa: BLE001 - records then live only in memory, as without one
            self.stats.add("journal_errors")

    def close_journal(self) -> None:
        """Close the journal once the store wrote its letters (they settle their records)."""
        journal, self.journal = self.journal, None
        if journal is not None:
            journal.close()

    def _cannot_start(self, exc: Exception) -> None:
        """Delivery cannot start (a setting that only fails when used: an unparseable Redis
        URL, a missing certificate file): say so once, naming the fix, and count every record
        as dropped (``worker_failed``), those already handed over and those to come, instead
        of accepting them into a queue nobody reads (rule 5)."""
        self.failed = True
        self.start_error = exc
        self._stopping = True
        self._started.set()
        write_line(
            f"discord-logging: delivery could not start, so records are not sent and are "
            f"counted as dropped (stats: dropped.worker_failed): {redact(str(exc))}",
        )
        self._seal("worker_failed")

    def _seal(self, reason: str = "closed") -> None:
        """The last sweep: records put while the notifier closed (or that no notifier will
        ever take) are counted as dropped for ``reason``, never stranded."""
        self._sealed = True
        while self._early:
            record = self._early.popleft()
            self.stats.dropped(reason, record.alert_type or level_alert_type(record.levelno))
        while self._handoff:
            try:
                record = self._handoff.popleft()
            except IndexError:  # a racing put() took its record back
                break
            self.stats.dropped(reason, record.alert_type or level_alert_type(record.levelno))

    def _take(self, limit: int = TAKE_AT_ONCE) -> None:
        """Move up to ``limit`` handed-over records through aggregation into the lanes (first
        those journaled while the notifier was built)."""
        aggregator, now = self._aggregator, self._clock()
        if self._early:
            early = self._early
            batch = [early.popleft() for _ in range(min(limit, len(early)))]
        else:
            batch = self.memory.take(self._handoff, limit)
            if self.journal is not None:
                self.journal.take(batch)  # on disk before anything else is done with them
        for record in batch:
            self.stats.add("emitted", alert_type=record.alert_type)
            if self.mutes is not None and self.mutes.take(record, self.journal, self.notifier):
                continue  # a mute holds it: in the history as muted, never sent
            releases, folded = aggregator.offer(
                snapshot_fingerprint(record), record, record.created, now
            )
            if folded:
                self.stats.add("aggregated", folded, alert_type=record.alert_type)
            self._submit(releases)
        self.memory.recount(len(self._early), self._notifier)

    def _submit(self, releases: list[Release[RecordSnapshot]]) -> None:
        journal = self.journal
        for release in releases:
            record_id = journal.released(release.item) if journal and release.record else None
            notification = to_notification(
                release.item, release.key, release.samples, notification_id=record_id
            )
            if release.count > 1:
                notification = notification.with_count(
                    release.count,
                    release.first_seen,
                    last_seen=release.last_seen,
                    ongoing=release.ongoing,
                    quiet=release.quiet,
                )
            if release.record:
                self.notifier.submit(notification)
            else:  # an incident's update that stands for no record: its message is edited
                self.notifier.show_update(notification)

    def _release_summaries(self) -> None:
        self._submit(self._aggregator.due(self._clock()))
        if self.mutes is not None:  # the shared mutes, re-read every REFRESH s
            self.mutes.tick(self.notifier)

    async def _nap(self) -> None:
        assert self._wake is not None
        self._wake.clear()
        self._sleeping = True
        if self._handoff or self._stopping:  # handed over while we were deciding to sleep
            self._sleeping = False
            return
        due = self.memory.nap(self._aggregator.next_due(self._clock()))
        try:
            await asyncio.wait_for(self._wake.wait(), timeout=due if due is not None else 1.0)
        except TimeoutError:
            pass
        finally:
            self._sleeping = False
