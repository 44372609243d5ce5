"""Storm aggregation (pure, takes ``now``): repeats of one problem become a count, not a ban.

Within ``window`` seconds of a fingerprint's first occurrence, which is sent at once, its
repeats are counted instead of sent. When the window ends the last repeat goes out carrying
the count ("x 512"), so 100,000 identical errors in a second are two messages.
Accounting stays exact: every record is released, or counted as folded into one that is.

What differed is kept too: each record's time and text (the item itself when it is a str,
else its ``message``), cut to ``KEPT_TEXT_LIMIT`` characters, for the first ``keep`` records
of a storm and at most ``keep_total`` over all storms, so a storm of any size holds bounded
memory. A summary carries them as ``samples``; the rest it only counts.

With ``edit_interval`` (``DISCORD_INCIDENT_UPDATES=edit``, the default) a storm is an
incident whose one message is kept current: it stays open while repeats keep coming (until
``window`` seconds pass without one; at most ``MAX_INCIDENT_AGE``). At most every
``edit_interval`` seconds a running update is released that stands for no record
(``record=False``: the latest repeat is held back, and folded when a newer one comes); when
the incident goes quiet its last update carries the held record (``quiet=True``).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Generic, TypeVar

MAX_TRACKED: Final = 10_000  # fingerprints remembered; past this the oldest are summarised
KEEP_PER_STORM: Final = 1_000  # records whose (time, text) one storm keeps for its summary
KEEP_TOTAL: Final = 20_000  # the same over all storms: 10,000 storms cannot keep 10 million
KEPT_TEXT_LIMIT: Final = 500  # characters kept of each record's text
# An incident whose repeats never stop is closed after a day and starts anew: one message does
# not stand for a problem for ever, and its samples are released.
MAX_INCIDENT_AGE: Final = 86_400.0
T = TypeVar("T")
Sample = tuple[float, str]  # (created, text) of one record of a storm


@dataclass(frozen=True, slots=True)
class Release(Generic[T]):
    """An item to send now; ``count`` > 1 when it stands for that many occurrences."""

    key: str
    item: T
    count: int = 1
    first_seen: float = 0.0
    samples: tuple[Sample, ...] = ()  # for a summary: the first kept records of the ``count``
    last_seen: float = 0.0  # wall-clock time of the latest record counted
    ongoing: bool = False  # an incident's running update: it goes on
    quiet: bool = False  # an incident's last update: no repeat for a window
    record: bool = True  # False: an update that stands for no record (``item`` was counted)


@dataclass(slots=True)
class _Storm(Generic[T]):
    started: float  # our clock, when the window opened
    first_seen: float  # wall-clock time of the first record, for the message
    count: int  # occurrences in the window, the first included
    last: T | None  # the latest repeat not yet sent
    kept: list[Sample]  # (time, text) of the first records counted in ``count``
    latest: T  # the newest record, sent or not (what an incident's update shows)
    last_at: float  # our clock, when the newest record came
    last_seen: float  # wall-clock time of the newest record
    shown: int = 1  # the count the incident's last update showed
    updated_at: float = 0.0  # our clock, when that update was released


class StormAggregator(Generic[T]):
    """Folds repeats of a key within ``window`` seconds; ``window == 0`` turns it off.
    ``edit_interval`` makes each storm an incident kept current (see the module)."""

    def __init__(
        self,
        window: float,
        max_tracked: int = MAX_TRACKED,
        *,
        keep: int = KEEP_PER_STORM,
        keep_total: int = KEEP_TOTAL,
        edit_interval: float | None = None,
        on_fold: Callable[[T], None] | None = None,
    ) -> None:
        self.window = window
        self.on_fold = on_fold  # told of each waiting repeat a newer one replaces (folded)
        self.max_tracked = max_tracked
        self.keep = keep
        self.keep_total = keep_total
        self.edit_interval = edit_interval
        self.kept = 0  # samples kept over all storms
        self._storms: OrderedDict[str, _Storm[T]] = OrderedDict()

    def offer(self, key: str, item: T, created: float, now: float) -> tuple[list[Release[T]], int]:
        """What to send now for ``item``, and how many records were folded away.

        A repeat within the window waits (and is folded once a later repeat or the window's
        summary replaces it); anything else is released at once.
        """
        if self.window <= 0 or not key:
            return [Release(key, item, last_seen=created)], 0
        storm = self._storms.get(key)
        if storm is not None and self._open(storm, now):
            storm.count += 1
            folded = 1 if storm.last is not None else 0  # the waiting one is replaced by this one
            if folded and self.on_fold is not None:
                self.on_fold(storm.last)  # type: ignore[arg-type]  # not None: folded
            storm.last = storm.latest = item
            storm.last_at, storm.last_seen = now, created
            self._keep(storm, item, created)
            return [], folded
        out: list[Release[T]] = []
        if storm is not None:
            out.extend(self._close(key, storm))
            del self._storms[key]
        storm = self._storms[key] = _Storm(now, created, 1, None, [], item, now, created, 1, now)
        self._keep(storm, item, created)
        out.append(Release(key, item, last_seen=created))
        while len(self._storms) > self.max_tracked:
            oldest_key, oldest = self._storms.popitem(last=False)
            out.extend(self._close(oldest_key, oldest))
        return out, 0

    def due(self, now: float) -> list[Release[T]]:
        """Summaries of windows that have ended (their keys are forgotten); for incidents,
        also the running updates that are due."""
        out: list[Release[T]] = []
        interval = self.edit_interval
        for key in list(self._storms):
            storm = self._storms[key]
            if not self._open(storm, now):
                out.extend(self._close(key, storm, quiet=True))
                del self._storms[key]
            elif (
                interval is not None
                and storm.count > storm.shown
                and now - storm.updated_at >= interval
            ):
                out.append(self._running(key, storm, now))
        return out

    def drain(self) -> list[Release[T]]:
        """Every pending summary, or incident's last update, now (at shutdown)."""
        out: list[Release[T]] = []
        for key, storm in self._storms.items():
            out.extend(self._close(key, storm))
        self._storms.clear()
        return out

    def release_repeats(self, created: float) -> list[Release[T]]:
        """Summaries of every waiting repeat now (for a flush), keeping the windows open; later
        repeats are counted afresh "since" ``created``. An incident instead releases an update
        carrying its held record, and goes on counting where it is."""
        out: list[Release[T]] = []
        for key, storm in self._storms.items():
            if self.edit_interval is None:
                out.extend(self._summary(key, storm))
                storm.count = 0
                storm.first_seen = created
            elif storm.last is not None:
                item, storm.last, storm.shown = storm.last, None, storm.count
                out.append(self._update(key, storm, item, ongoing=True))
        return out

    def end(self, key: str) -> list[Release[T]]:
        """End the storm (incident) of ``key`` now, as resolved: what it holds back is released
        as its last update, and its next record starts anew."""
        storm = self._storms.pop(key, None)
        return self._close(key, storm) if storm is not None else []

    def next_due(self, now: float) -> float | None:
        """Seconds until the earliest window with waiting repeats ends (or an incident's
        update is due), or None."""
        if self.edit_interval is None:
            ends = [
                s.started + self.window - now for s in self._storms.values() if s.last is not None
            ]
            return max(0.0, min(ends)) if ends else None
        times = []
        for storm in self._storms.values():
            if storm.count > 1:
                times.append(min(storm.last_at + self.window, storm.started + MAX_INCIDENT_AGE))
            if storm.count > storm.shown:
                times.append(storm.updated_at + self.edit_interval)
        return max(0.0, min(times) - now) if times else None

    def _open(self, storm: _Storm[T], now: float) -> bool:
        """Whether a record at ``now`` repeats ``storm``: within the window of its first
        record, or (an incident) of its latest, for at most ``MAX_INCIDENT_AGE``."""
        if self.edit_interval is None:
            return now - storm.started < self.window
        return now - storm.last_at < self.window and now - storm.started < MAX_INCIDENT_AGE

    def _close(self, key: str, storm: _Storm[T], *, quiet: bool = False) -> list[Release[T]]:
        """A storm that ends: its summary, or the incident's last update (carrying the held
        record, if any; a lone record has nothing to update)."""
        if self.edit_interval is None:
            return self._summary(key, storm)
        if storm.count <= 1:
            self._release_kept(storm)
            return []
        held, storm.last = storm.last, None
        release = self._update(key, storm, storm.latest if held is None else held, quiet=quiet)
        self._release_kept(storm)
        return [release if held is not None else _without_record(release)]

    def _running(self, key: str, storm: _Storm[T], now: float) -> Release[T]:
        """An incident's running update: the count so far, standing for no record."""
        storm.shown, storm.updated_at = storm.count, now
        return _without_record(self._update(key, storm, storm.latest, ongoing=True))

    @staticmethod
    def _update(
        key: str, storm: _Storm[T], item: T, *, ongoing: bool = False, quiet: bool = False
    ) -> Release[T]:
        samples = tuple(storm.kept)
        return Release(
            key, item, storm.count, storm.first_seen, samples, storm.last_seen, ongoing, quiet
        )

    def _release_kept(self, storm: _Storm[T]) -> None:
        self.kept -= len(storm.kept)
        storm.kept = []

    def _keep(self, storm: _Storm[T], item: T, created: float) -> None:
        if len(storm.kept) < self.keep and self.kept < self.keep_total:
            text = item if isinstance(item, str) else getattr(item, "message", "")
            # A slice is a new string: the record's full text is not held alive.
            storm.kept.append((created, text[:KEPT_TEXT_LIMIT] if isinstance(text, str) else ""))
            self.kept += 1

    def _summary(self, key: str, storm: _Storm[T]) -> list[Release[T]]:
        """The waiting repeat as a summary (if any); the storm's samples are released either way."""
        kept, storm.kept = storm.kept, []
        self.kept -= len(kept)
        if storm.last is None:
            return []
        samples = tuple(kept) if storm.count > 1 else ()
        release = Release(key, storm.last, storm.count, storm.first_seen, samples, storm.last_seen)
        storm.last = None
        return [release]

    def __len__(self) -> int:
        return len(self._storms)


def _without_record(release: Release[T]) -> Release[T]:
    return Release(
        release.key, release.item, release.count, release.first_seen, release.samples,
        release.last_seen, release.ongoing, release.quiet, record=False,
    )  # fmt: skip
