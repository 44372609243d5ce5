"""The worker's side of the journal (:mod:`..store.journal`): what it writes, when a record
leaves it, and taking the journals of dead processes into the store.

On the worker thread: :meth:`RecordJournal.take` journals each group of records the worker
takes from the hand-off, in one write, before they are aggregated; each record gets the id
its notification will carry. A record is settled (leaves the journal) when it is delivered,
dropped, folded into a storm's count, or written to the store as a letter (the store's
writer says so, :attr:`Store.on_written`). Records are never journaled on the caller's
thread: its cost stays a deque append (docs/architecture.md, "The journal").
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from ..capture.snapshot import RecordSnapshot, scrubbed, to_notification
from ..deadletters import DeadLetter, DeadLetterReason
from ..notification import DeliveryStatus, Notification, NotificationResult, new_id
from ..stats import DeliveryStats
from ..store._holders import Identity, Liveness
from ..store._paths import UnsafeStoreDirectory, private_directory
from ..store.journal import (
    ANSWERED,
    RECORD,
    SENT,
    SETTLED,
    Journal,
    dead_segments,
    frames,
    give_back,
    take,
)
from .threads import run_off_loop

if TYPE_CHECKING:
    from ..store import Store
    from .notifier import Notifier
    from .pending import Pending

LOOK_INTERVAL: Final = 60.0  # seconds between a live process's looks for dead journals
ADOPT_CHUNK: Final = 500  # letters of a dead journal per store write: a close stops between
RECOVERED_ERROR: Final = (
    "the process that logged it ended before it was delivered or kept; taken from its journal"
)
# UTF-8 rather than ASCII escapes: a quarter faster, and a lone surrogate a log message may
# carry survives (json.loads reads bytes with "surrogatepass").
_JSON: Final = json.JSONEncoder(separators=(",", ":"), check_circular=False, ensure_ascii=False)


class RecordJournal:
    """Journals what the worker takes and settles it as outcomes come (see the module)."""

    def __init__(
        self,
        journal: Journal,
        notifier: Notifier | None = None,
        store: Store | None = None,
        *,
        route: Callable[[str], tuple[str, str] | None] | None = None,
    ) -> None:
        # Built on the worker thread before anything heavy is imported, from the settings'
        # routes alone (``route``: alert type -> webhook identity and lane name), so that it
        # journals from the first record on; the notifier and store are attached once built.
        self.journal = journal
        self.ids: dict[int, str] = {}  # id() of a journaled snapshot -> its record id
        self._route_of = route
        self._notifier: Notifier | None = None
        self._store: Store | None = None
        self._routes: dict[str, tuple[str, str] | None] = {}
        self._settles: list[str] = []
        self._scheduled = False
        self._next_look = 0.0  # the first look: as soon as the worker's loop runs
        self._looking = False
        self._look_task: asyncio.Future[None] | None = None
        self._closed = False
        if notifier is not None and store is not None:
            self.attach(notifier, store)

    def attach(self, notifier: Notifier, store: Store) -> None:
        """Listen to ``notifier``'s requests and outcomes and ``store``'s writes: before the
        notifier starts (its lanes take ``on_sending`` when they start)."""
        if notifier.started:
            # Its lanes took on_sending when they started: requests would go out with no
            # sent mark, and a killed process's records would come back plain (rule 3).
            raise RuntimeError(
                "the journal must be attached before the notifier starts: build the "
                "RecordJournal first, then call notifier.start()"
            )
        self._notifier = notifier
        self._store = store
        notifier.listeners.append(self._on_result)
        notifier.on_sending = self.sent
        store.on_written = self.journal.settle

    # -- the worker's calls ------------------------------------------------------------------

    def take(self, records: Sequence[RecordSnapshot]) -> None:
        """Journal ``records`` (one frame, one write) and remember the id each one's
        notification carries. Records with no webhook are not journaled (they are dropped,
        counted)."""
        rows: list[list[Any]] = []
        ids = self.ids
        try:
            for record in records:
                route = self._route(record.alert_type)
                if route is None:
                    continue
                record_id = new_id()
                ids[id(record)] = record_id
                rows.append([record_id, *route, record])
            if rows:
                payload = _JSON.encode(rows).encode("utf-8", "surrogatepass")
                if b"webhooks" in payload:  # a token, maybe: kept as the letters keep it
                    rows = [[*row[:3], scrubbed(row[3])] for row in rows]
                    payload = _JSON.encode(rows).encode("utf-8", "surrogatepass")
                self.journal.append([row[0] for row in rows], payload)
        except Exception:  # noqa: BLE001 - never stop the worker: those live only in memory
            self.journal.stats.add("journal_errors")

    def released(self, record: RecordSnapshot) -> str | None:
        """The id the notification of ``record`` (released to a lane) must carry."""
        return self.ids.pop(id(record), None)

    def folded(self, record: RecordSnapshot) -> None:
        """``record`` was folded into a storm's count: its outcome is ``aggregated``."""
        record_id = self.ids.pop(id(record), None)
        if record_id is not None:
            self._settle_soon(record_id)

    def write_settles(self) -> None:
        """Write the settle marks gathered on the loop (one write per segment)."""
        settles, self._settles = self._settles, []
        self._scheduled = False
        if settles:
            self.journal.settle(settles)

    def look_for_dead(self) -> None:
        """At once when the worker starts, then every ``LOOK_INTERVAL`` seconds: take the
        journals of processes that died (an earlier run, a sibling sharing the store) into
        the store, on the notifier's store thread (never the loop, which keeps serving)."""
        now = time.monotonic()
        if self._looking or now < self._next_look:
            return
        self._looking = True
        self._next_look = now + LOOK_INTERVAL
        self._look_task = asyncio.ensure_future(self._look())

    async def _look(self) -> None:
        """One segment per call on the store thread, and the closing process stops between
        two chunks (a large dead journal is the next start's, not a reason to miss the
        deadline)."""
        try:
            # The store thread: its connections are closed when the notifier closes.
            if self._store is None:  # not attached yet: the next look
                return
            shared = self._notifier._shared if self._notifier is not None else None
            io = shared.store_io if shared else None
            journal = self.journal
            for path, _ in await run_off_loop(io, find_dead, journal.directory):
                if self._stopping():
                    break
                kept = await run_off_loop(
                    io, recover_segment, path, self._store, journal, self._stopping
                )
                if kept and not self._stopping():  # an exit does not wait for them
                    self._lanes_look_now()
        except Exception:  # noqa: BLE001 - a directory that cannot be read: the next look tries
            self.journal.stats.add("journal_errors")
        finally:
            self._looking = False

    def _stopping(self) -> bool:
        """Whether the process is closing (read between chunks, on the store thread too):
        the journal or the notifier closed, or the interpreter's exit began (``threading``
        says so before it runs the exit hooks that drain the handlers)."""
        shared = self._notifier._shared if self._notifier is not None else None
        return (
            self._closed
            or (shared is not None and shared.closing)
            or getattr(threading, "_SHUTTING_DOWN", False)
            or not threading.main_thread().is_alive()
        )

    def recover(self) -> int:
        """Take the dead processes' journals into the store now; returns how many letters."""
        if self._store is None:
            return 0
        return recover_dead(self.journal.directory, self._store, self.journal)

    def sent(self, carried: list[Pending], sending: bool) -> None:
        """A lane's ``on_sending``: a request carrying these goes out (``sending``: Discord
        may get them), or its answer was handled: those left neither settled nor marked
        uncertain certainly were not posted."""
        if sending:
            self.journal.sent([pending.notification.id for pending in carried])
            return
        self.write_settles()  # what this answer delivered, at once: one write
        back = [p.notification.id for p in carried if not p.settled and not p.uncertain]
        if back:
            self.journal.answered(back)

    def close(self) -> None:
        """Write what is gathered and close the journal (after the store wrote its letters)."""
        self._closed = True  # a look under way stops at its next chunk
        self.write_settles()
        if self._store is not None:
            self._store.on_written = None
        self.journal.close()

    # -- internals ---------------------------------------------------------------------------

    def _lanes_look_now(self) -> None:
        """Letters were just taken into the store: each lane looks for them now, not after
        its idle backoff (up to 30 s)."""
        lanes = self._notifier.lanes.values() if self._notifier is not None else ()
        for lane in set(lanes):
            lane.redelivery.next_refill = 0.0
            lane.wake()

    def _route(self, alert_type: str) -> tuple[str, str] | None:
        """(webhook identity, lane name) of the webhook that carries ``alert_type``."""
        route = self._routes.get(alert_type, False)
        if route is False:
            if self._route_of is not None:
                route = self._route_of(alert_type)
            else:
                notifier = self._notifier
                assert notifier is not None  # built with neither route nor notifier: a bug
                carrier = notifier.router.carrier(alert_type)
                if carrier is None:
                    route = None
                else:
                    lane = notifier.lanes.get(carrier)
                    route = (notifier.urls[carrier].identity, lane.name if lane else carrier)
            self._routes[alert_type] = route
        return route  # type: ignore[return-value]  # False was replaced

    def _on_result(self, notification: Notification, result: NotificationResult, _: str) -> None:
        # A letter is settled once the store wrote it (Store.on_written), not while buffered.
        if result.status is not DeliveryStatus.DEAD_LETTERED:
            self._settle_soon(notification.id)

    def _settle_soon(self, record_id: str) -> None:
        """Gathered, and written after the answer that settled it was handled (``sent``) or
        once the loop is done with its current callback, whichever comes first."""
        self._settles.append(record_id)
        if not self._scheduled:
            self._scheduled = True
            try:
                asyncio.get_running_loop().call_soon(self.write_settles)
            except RuntimeError:  # not on the loop (never expected): write now
                self.write_settles()


def open_journal(store: Store, notifier: Notifier, stats: DeliveryStats) -> RecordJournal | None:
    """This process's journal in the store directory, attached to ``notifier`` and ``store``
    (its first look for dead processes' journals runs once the loop does)."""
    s = notifier.settings
    if not s.journal:
        return None
    try:
        private_directory(store.path)  # another user's store gets no journal either
    except UnsafeStoreDirectory:
        return None  # the store says why, once, when it opens (at once: the lanes' first look)
    except OSError:
        pass  # the journal's first write says it cannot be written
    journal = Journal(store.path / "journal", s.journal_max_bytes, stats)
    return RecordJournal(journal, notifier, store)


def early_journal(
    directory: Path,
    max_bytes: int,
    route: Callable[[str], tuple[str, str] | None],
    stats: DeliveryStats,
) -> RecordJournal:
    """This process's journal in ``directory``, journaling before the notifier exists: the
    worker's first step, before any heavy import (docs/architecture.md, "The journal")."""
    return RecordJournal(Journal(directory, max_bytes, stats), route=route)


def recover_dead(
    directory: Path, store: Store, me: Journal, stop: Callable[[], bool] = lambda: False
) -> int:
    """Take every journal segment in ``directory`` whose holder is gone into the store, one
    segment at a time (see :func:`recover_segment`), as ``me``'s holder; stops early once
    ``stop()`` is true. Returns how many letters were kept."""
    kept = 0
    for path, _ in find_dead(directory):
        if stop():
            break
        kept += recover_segment(path, store, me, stop)
    return kept


def find_dead(directory: Path) -> list[tuple[Path, Identity]]:
    """The dead segments in ``directory`` (:func:`~..store.journal.dead_segments`), after
    deleting the lock files killed holders left."""
    Liveness(directory.parent).sweep()
    return dead_segments(directory)


def recover_segment(
    path: Path, store: Store, me: Journal, stop: Callable[[], bool] = lambda: False
) -> int:
    """Take one dead segment into the store as kept letters, each exactly once (an exclusive
    rename takes it; a letter already kept or delivered is not kept again), ADOPT_CHUNK
    letters per write, then delete it. When ``stop()`` turns true between two chunks, or the
    store cannot take them now, the segment is given back: the next taker writes only what
    is not kept yet. Returns how many letters were kept."""
    taken = take(path, me.owner)
    if taken is None:
        return 0  # another process took it
    stats = me.stats
    try:
        letters, torn = letters_of(taken.read_bytes())
    except OSError:
        stats.add("journal_errors")
        give_back(taken)
        return 0
    kept = 0
    for start in range(0, len(letters), ADOPT_CHUNK):
        written = None if stop() else store.adopt(letters[start : start + ADOPT_CHUNK])
        if written is None:  # closing, or the store cannot take them now: a later look
            give_back(taken)
            break
        kept += written
    else:
        if torn:
            stats.add("journal_torn", torn)
        with contextlib.suppress(FileNotFoundError):
            taken.unlink()
    if kept:
        stats.add("journal_recovered", kept)
    return kept


def letters_of(data: bytes) -> tuple[list[DeadLetter], int]:
    """The unsettled records of one segment's bytes as letters, and how many frames were
    torn or unreadable."""
    found, torn = frames(data)
    bad = int(torn)
    records: dict[str, list[Any]] = {}
    settled: set[str] = set()
    sent: set[str] = set()
    for kind, payload in found:
        if kind == RECORD:
            try:
                for item in json.loads(payload):
                    records[str(item[0])] = item
            except (ValueError, IndexError, TypeError):
                bad += 1
        elif kind == SETTLED:
            settled.update(payload.decode("ascii", "replace").split(","))
        elif kind == SENT:
            sent.update(payload.decode("ascii", "replace").split(","))
        elif kind == ANSWERED:
            sent.difference_update(payload.decode("ascii", "replace").split(","))
    letters = []
    for record_id, item in records.items():
        if record_id in settled:
            continue
        try:
            letters.append(_letter(record_id, item, uncertain=record_id in sent))
        except (ValueError, IndexError, TypeError):
            bad += 1
    return letters, bad


def _letter(record_id: str, item: list[Any], *, uncertain: bool) -> DeadLetter:
    _, destination, lane, fields = item
    snap = RecordSnapshot(*fields)
    snap = snap._replace(
        extra=tuple((str(k), str(v)) for k, v in snap.extra),
        buttons=tuple((str(k), str(v)) for k, v in snap.buttons),
    )
    return DeadLetter(
        notification=to_notification(snap, notification_id=record_id),
        webhook=str(lane),
        # A request may have carried it (Discord may have it): redelivered with the note.
        reason=DeadLetterReason.UNCERTAIN if uncertain else DeadLetterReason.PROCESS_ENDED,
        error=RECOVERED_ERROR,
        dead_at=float(snap.created),
        destination=str(destination),
    )
