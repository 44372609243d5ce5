"""Storm aggregation (pure, takes ``now``): repeats of one problem become a count, not a ban.

Within ``window`` seconds of a fingerprint's first occurrence, which is sent at once, its
repeats are counted instead of sent. When the window ends the last repeat goes out carrying
the count ("x 512 since 14:02:11"), so 100,000 identical errors in a second are two messages.
Accounting stays exact: every record is released, or counted as folded into one that is.

What differed is kept too: each record's time and text (the item itself when it is a str,
else its ``message``), cut to ``KEPT_TEXT_LIMIT`` characters, for the first ``keep`` records
of a storm and at most ``keep_total`` over all storms, so a storm of any size holds bounded
memory. A summary carries them as ``samples``; the rest it only counts.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Final, Generic, TypeVar

MAX_TRACKED: Final = 10_000  # fingerprints remembered; past this the oldest are summarised
KEEP_PER_STORM: Final = 1_000  # records whose (time, text) one storm keeps for its summary
KEEP_TOTAL: Final = 20_000  # the same over all storms: 10,000 storms cannot keep 10 million
KEPT_TEXT_LIMIT: Final = 500  # characters kept of each record's text
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


@dataclass(slots=True)
class _Storm(Generic[T]):
    started: float  # our clock, when the window opened
    first_seen: float  # wall-clock time of the first record, for the message
    count: int  # occurrences in the window, the first included
    last: T | None  # the latest repeat not yet sent
    kept: list[Sample]  # (time, text) of the first records counted in ``count``


class StormAggregator(Generic[T]):
    """Folds repeats of a key within ``window`` seconds; ``window == 0`` turns it off."""

    def __init__(
        self,
        window: float,
        max_tracked: int = MAX_TRACKED,
        *,
        keep: int = KEEP_PER_STORM,
        keep_total: int = KEEP_TOTAL,
    ) -> None:
        self.window = window
        self.max_tracked = max_tracked
        self.keep = keep
        self.keep_total = keep_total
        self.kept = 0  # samples kept over all storms
        self._storms: OrderedDict[str, _Storm[T]] = OrderedDict()

    def offer(self, key: str, item: T, created: float, now: float) -> tuple[list[Release[T]], int]:
        """What to send now for ``item``, and how many records were folded away.

        A repeat within the window waits (and is folded once a later repeat or the window's
        summary replaces it); anything else is released at once.
        """
        if self.window <= 0 or not key:
            return [Release(key, item)], 0
        storm = self._storms.get(key)
        if storm is not None and now - storm.started < self.window:
            storm.count += 1
            folded = 1 if storm.last is not None else 0  # the waiting one is replaced by this one
            storm.last = item
            self._keep(storm, item, created)
            return [], folded
        out: list[Release[T]] = []
        if storm is not None:
            out.extend(self._summary(key, storm))
            del self._storms[key]
        storm = self._storms[key] = _Storm(now, created, 1, None, [])
        self._keep(storm, item, created)
        out.append(Release(key, item))
        while len(self._storms) > self.max_tracked:
            oldest_key, oldest = self._storms.popitem(last=False)
            out.extend(self._summary(oldest_key, oldest))
        return out, 0

    def due(self, now: float) -> list[Release[T]]:
        """Summaries of windows that have ended; their keys are forgotten."""
        out: list[Release[T]] = []
        for key in list(self._storms):
            storm = self._storms[key]
            if now - storm.started >= self.window:
                out.extend(self._summary(key, storm))
                del self._storms[key]
        return out

    def drain(self) -> list[Release[T]]:
        """Every pending summary now (at shutdown)."""
        out: list[Release[T]] = []
        for key, storm in self._storms.items():
            out.extend(self._summary(key, storm))
        self._storms.clear()
        return out

    def release_repeats(self, created: float) -> list[Release[T]]:
        """Summaries of every waiting repeat now (for a flush), keeping the windows open; later
        repeats are counted afresh "since" ``created``."""
        out: list[Release[T]] = []
        for key, storm in self._storms.items():
            out.extend(self._summary(key, storm))
            storm.count = 0
            storm.first_seen = created
        return out

    def next_due(self, now: float) -> float | None:
        """Seconds until the earliest window with waiting repeats ends, or None."""
        ends = [s.started + self.window - now for s in self._storms.values() if s.last is not None]
        return max(0.0, min(ends)) if ends else None

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
        release = Release(key, storm.last, storm.count, storm.first_seen, samples)
        storm.last = None
        return [release]

    def __len__(self) -> int:
        return len(self._storms)
