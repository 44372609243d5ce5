"""What a mute is and what it holds (pure: every decision takes ``now``)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any, Final

from ..alerts import AlertType, normalize_alert_type
from ..wording import closest

ALL: Final = "all"
CRITICAL: Final = 50  # a record at this level or above passes a mute that is not all_levels
SAMPLE_LIMIT: Final = 300  # characters kept of a muted record's text, for the summary
_DURATION: Final = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$")
_UNIT: Final = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}
MAX_DURATION: Final = 365 * 86_400.0


def parse_duration(text: str) -> float:
    """``30s``, ``15m``, ``2h``, ``1d``, ``1w`` (a bare number is seconds) in seconds; ValueError
    saying what is allowed."""
    found = _DURATION.match(str(text))
    seconds = float(found.group(1)) * _UNIT[found.group(2)] if found else 0.0
    if not 0 < seconds <= MAX_DURATION:
        raise ValueError(
            f"{str(text)[:20]!r} is not a duration: use a number with s, m, h, d or w, "
            "greater than 0 and at most a year, e.g. 2h"
        )
    return seconds


def parse_scope(text: str) -> str:
    """``all``, or alert types separated by commas, normalized; ValueError saying why not."""
    names = [part.strip() for part in str(text).split(",") if part.strip()]
    if not names:
        raise ValueError("name an alert type (general, error, ...) or all")
    if any(name.lower() == ALL for name in names):
        return ALL
    return ",".join(dict.fromkeys(normalize_alert_type(name) for name in names))


def misspelt(scope: str, known: Iterable[str] = ()) -> str | None:
    """What is wrong with ``scope`` (from :func:`parse_scope`) when one of its names is not an
    alert type known here (the built-in ones and ``known``) but close to one: a typo that
    would mute nothing while its author believes the channel quiet. None when there is none;
    a name far from every known type is taken as a custom type."""
    if scope == ALL:
        return None
    names = {kind.value for kind in AlertType} | set(known)
    for name in scope.split(","):
        close = None if name in names else closest(name, names)
        if close:
            return f"{name!r} is not an alert type here (did you mean {close}?)"
    return None


@dataclass(frozen=True, slots=True)
class Mute:
    """A window ``[start, end)`` (wall-clock seconds) during which records of ``scope`` (alert
    types separated by commas, or ``all``) whose message contains ``match`` are muted; below
    CRITICAL unless ``all_levels``. ``by`` says who set it (host and pid, or ``quiet hours``)."""

    id: str
    scope: str
    start: float
    end: float
    reason: str = ""
    match: str = ""
    all_levels: bool = False
    by: str = ""

    @property
    def types(self) -> tuple[str, ...]:
        """The alert types it mutes (``("all",)`` for every type)."""
        return tuple(self.scope.split(","))

    def active(self, now: float) -> bool:
        """Whether the window holds ``now``."""
        return self.start <= now < self.end

    def holds(self, alert_type: str, levelno: int, text: str, now: float) -> bool:
        """Whether this mute keeps a record of ``alert_type`` at ``levelno`` from Discord."""
        if not self.active(now) or not (self.scope == ALL or alert_type in self.types):
            return False
        if levelno >= CRITICAL and not self.all_levels:
            return False
        return not self.match or self.match.casefold() in text.casefold()

    def to_json(self) -> str:
        """The mute as JSON (the shared table's value)."""
        import json

        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str | bytes) -> Mute:
        """Rebuild from :meth:`to_json`; unknown keys are ignored."""
        import json

        data = json.loads(text)
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        return cls(**known)

    def describe(self) -> str:
        """One line: scope, and the conditions beyond it."""
        words = [self.scope]
        if self.match:
            words.append(f"matching {self.match!r}")
        words.append("all levels" if self.all_levels else "below CRITICAL")
        return ", ".join(words)


@dataclass(slots=True)
class Tally:
    """What one mute held in one process (or, merged, in the fleet)."""

    counts: dict[str, int] = field(default_factory=dict)
    first: float | None = None
    last: float | None = None
    sample: str = ""

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def add(self, alert_type: str, created: float, text: str) -> None:
        """Count one muted record."""
        self.counts[alert_type] = self.counts.get(alert_type, 0) + 1
        self.first = created if self.first is None else min(self.first, created)
        self.last = created if self.last is None else max(self.last, created)
        if not self.sample:
            self.sample = text[:SAMPLE_LIMIT]

    def merge(self, other: Tally) -> None:
        """Add ``other`` (another process's tally of the same mute)."""
        for kind, count in other.counts.items():
            self.counts[kind] = self.counts.get(kind, 0) + count
        earlier = other.first is not None and (self.first is None or other.first < self.first)
        if other.sample and (earlier or not self.sample):
            self.sample = other.sample  # the sample is the earliest record's
        for when in (other.first, other.last):
            if when is not None:
                self.first = when if self.first is None else min(self.first, when)
                self.last = when if self.last is None else max(self.last, when)

    def to_json(self) -> str:
        import json

        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str | bytes) -> Tally:
        import json

        data: dict[str, Any] = json.loads(text)
        return cls(
            {str(k): int(v) for k, v in dict(data.get("counts") or {}).items()},
            data.get("first"),
            data.get("last"),
            str(data.get("sample") or ""),
        )
