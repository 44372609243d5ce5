"""The worker's side of mutes (the worker thread): which mutes hold now, what they held, and
the one silent summary when one ends (docs/architecture.md, "Mutes, quiet hours and resolving
an incident").

:meth:`MuteGate.tick` runs on the worker's loop between batches and reads the shared table at
most every ``REFRESH`` seconds; :meth:`MuteGate.take` is a dict lookup per record.
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Final

from ..capture.routing import level_alert_type
from ..capture.snapshot import RecordSnapshot, scrub, snapshot_fingerprint, to_notification
from ..notification import Notification
from ..stats import DeliveryStats
from ..wording import counted
from .quiet import QuietHours
from .rules import ALL, Mute, Tally
from .table import MuteTable

if TYPE_CHECKING:
    from ..delivery.journaling import RecordJournal
    from ..delivery.notifier import Notifier

REFRESH: Final = 1.5  # seconds between two reads of the shared mutes
SUMMARY_GRACE: Final = 2 * REFRESH  # every process has added its tallies by then
KEEP_ENDED: Final = 86_400.0  # a summarized mute's row is deleted this long after its end
ERROR_PAUSE: Final = 5.0  # a table that failed is tried again after this
# Muted records written to the history per refresh (about 650 a second); past it a flood is
# only counted (stats, the summary), so a muted storm cannot swamp the store's writer.
HISTORY_BOUND: Final = 1_000


def this_holder() -> str:
    """Who this process is, in a mute's ``by`` and its tallies: host, pid and a random part."""
    return f"{socket.gethostname()}:{os.getpid()}:{os.urandom(3).hex()}"


class MuteGate:
    """The mutes this worker honours, re-read from the shared table every ``refresh`` s."""

    def __init__(
        self,
        open_table: Callable[[], MuteTable],
        *,
        stats: DeliveryStats,
        quiet: Iterable[QuietHours] = (),
        clock: Callable[[], float] | None = None,
        refresh: float = REFRESH,
    ) -> None:
        self._open_table = open_table
        self._table: MuteTable | None = None
        self.stats = stats
        self.quiet = tuple(quiet)
        self._clock = clock
        self.refresh = refresh
        self.holder = this_holder()
        self._by_type: dict[str, list[Mute]] = {}
        self._tallies: dict[str, Tally] = {}
        self._dirty: set[str] = set()
        self._quiet_written: set[str] = set()
        self._next = 0.0
        self.history_bound = HISTORY_BOUND
        self._written = 0  # muted records written to the history since the last refresh

    def now(self) -> float:
        return self._clock() if self._clock is not None else time.time()

    @property
    def active(self) -> list[Mute]:
        """The mutes read last that hold now."""
        now = self.now()
        found = {m.id: m for mutes in self._by_type.values() for m in mutes if m.active(now)}
        return list(found.values())

    # -- per record (the worker's batch loop) --------------------------------------------------

    def take(
        self, record: RecordSnapshot, journal: RecordJournal | None, notifier: Notifier
    ) -> bool:
        """True when a mute holds ``record``: it is then written to the history as muted (its
        journal entry settled), counted, and tallied for the mute's summary."""
        by_type = self._by_type
        if not by_type:
            return False
        alert_type = record.alert_type or level_alert_type(record.levelno)
        now = self.now()
        for mute in (*by_type.get(alert_type, ()), *by_type.get(ALL, ())):
            if mute.holds(alert_type, record.levelno, record.message, now):
                self._hold(mute, alert_type, record, journal, notifier)
                return True
        return False

    def _hold(
        self,
        mute: Mute,
        alert_type: str,
        record: RecordSnapshot,
        journal: RecordJournal | None,
        notifier: Notifier,
    ) -> None:
        """Tally ``record`` for ``mute``; write it to the history unless this refresh wrote
        ``history_bound`` already (a flood while muted: then it is only counted, as a storm's
        repeats are, and its journal entry settled)."""
        self._dirty.add(mute.id)
        tally = self._tallies.setdefault(mute.id, Tally())
        if self._written >= self.history_bound:
            tally.add(alert_type, record.created, "" if tally.sample else scrub(record.message))
            notifier.stats.add("muted", alert_type=alert_type)
            if journal is not None:
                journal.folded(record)
            return
        self._written += 1
        record_id = journal.released(record) if journal is not None else None
        notification = to_notification(
            record, snapshot_fingerprint(record), notification_id=record_id
        )
        tally.add(alert_type, record.created, notification.message)
        notifier.mark_muted(
            notification, f"muted ({mute.id}{': ' + mute.reason if mute.reason else ''})"
        )

    # -- between batches ---------------------------------------------------------------------

    def tick(self, notifier: Notifier) -> None:
        """At most every ``refresh`` seconds: write the quiet hours' window and this process's
        tallies, read the mutes, and send the summaries this process claimed."""
        now = self.now()
        if now < self._next:
            return
        self._next = now + self.refresh
        self._written = 0
        try:
            summaries = self._refresh(now)
        except Exception:  # noqa: BLE001 - the mutes read last stay; tried again later
            self.stats.add("mute_errors")
            self._next = now + ERROR_PAUSE
            return
        for notification in summaries:
            notifier.submit(notification)

    def _refresh(self, now: float) -> list[Notification]:
        table = self._table
        if table is None:
            table = self._table = self._open_table()
        for rule in self.quiet:
            mute = rule.mute_at(now)
            if mute is not None and mute.id not in self._quiet_written:
                table.add(mute)
                self._quiet_written.add(mute.id)
        for mute_id in sorted(self._dirty):
            table.add_tally(mute_id, self.holder, self._tallies[mute_id])
        self._dirty.clear()
        summaries: list[Notification] = []
        by_type: dict[str, list[Mute]] = {}
        for mute, claimed in table.mutes():
            if mute.end > now:
                for kind in mute.types:
                    by_type.setdefault(kind, []).append(mute)
            elif not claimed and mute.end + SUMMARY_GRACE <= now:
                total = table.claim_summary(mute.id, self.holder)
                if total is not None and total.total:
                    summaries.append(summary_notification(mute, total))
                elif total is not None:
                    table.forget(mute.id)  # it held nothing: nothing to say
            elif claimed and mute.end + KEEP_ENDED <= now:
                table.forget(mute.id)
            if mute.end + SUMMARY_GRACE <= now:
                self._tallies.pop(mute.id, None)
        self._by_type = by_type
        return summaries

    def close(self) -> None:
        """Write the tallies not written yet (best effort) and close the table."""
        table, self._table = self._table, None
        if table is None:
            return
        try:
            for mute_id in sorted(self._dirty):
                table.add_tally(mute_id, self.holder, self._tallies[mute_id])
            self._dirty.clear()
        except Exception:  # noqa: BLE001 - counts lost; the records are in the history
            self.stats.add("mute_errors")
        finally:  # closed even when a tally could not be written (a locked or full table)
            with contextlib.suppress(Exception):
                table.close()


def summary_notification(mute: Mute, tally: Tally) -> Notification:
    """The one silent message a mute sends when it ends: what it held, per alert type, first
    and last, a sample. It goes to the type that held most (pings nobody)."""
    kind = max(sorted(tally.counts), key=lambda k: tally.counts[k])
    counts = ", ".join(f"{name}: {tally.counts[name]}" for name in sorted(tally.counts))
    why = f" ({mute.reason})" if mute.reason else ""
    lines = [
        f"{mute.describe()}{why}, from {_when(mute.start)} to {_when(mute.end)}, set by {mute.by}",
        f"first {_when(tally.first)}, last {_when(tally.last)}",
    ]
    fields = [("Muted", counts), ("Mute", mute.id)]
    if tally.sample:
        fields.append(("Sample", tally.sample[:1000]))
    return Notification(
        alert_type=kind,
        title=f"{counted(tally.total, 'record')} muted: {mute.scope}",
        message="\n".join(lines),
        level="INFO",
        levelno=20,
        created=time.time(),
        host=socket.gethostname(),
        fields=tuple(fields),
        silent=True,
    )


def _when(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(seconds))
