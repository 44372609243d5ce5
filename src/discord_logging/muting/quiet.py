"""``DISCORD_QUIET_HOURS``: recurring windows, each a mute of its alert types (pure).

``general,monitoring=22:00-07:00 Europe/Berlin``: the types (or ``all``), ``=``, a daily window
from start to end (one that ends at or before its start ends the next day), and an IANA time
zone (UTC when none is given). Several rules are separated by ``;``. The window holding ``now``
becomes a :class:`~.rules.Mute` whose id is the same in every process of the fleet.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any, Final

from .rules import Mute, parse_scope

QUIET_BY: Final = "quiet hours"
_WINDOW: Final = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*(\S+)?\s*$")


@dataclass(frozen=True, slots=True)
class QuietHours:
    """One rule: ``scope`` is muted daily from ``start`` to ``end`` in ``zone``."""

    scope: str
    start: dt.time
    end: dt.time
    zone: str = "UTC"
    text: str = ""

    def window_at(self, now: float) -> tuple[float, float] | None:
        """The window (wall-clock seconds) that holds ``now``, or None."""
        from zoneinfo import ZoneInfo

        tz = ZoneInfo(self.zone)
        today = dt.datetime.fromtimestamp(now, tz).date()
        for day in (today - dt.timedelta(days=1), today):
            start = dt.datetime.combine(day, self.start, tz)
            end_day = day if self.end > self.start else day + dt.timedelta(days=1)
            end = dt.datetime.combine(end_day, self.end, tz)
            if start.timestamp() <= now < end.timestamp():
                return start.timestamp(), end.timestamp()
        return None

    def mute_at(self, now: float) -> Mute | None:
        """The mute of the window holding ``now`` (the same id in every process), or None."""
        window = self.window_at(now)
        if window is None:
            return None
        import hashlib

        digest = hashlib.sha256(f"{self.text}@{window[0]:.0f}".encode()).hexdigest()[:12]
        return Mute(f"quiet-{digest}", self.scope, window[0], window[1], self.text, by=QUIET_BY)


def parse_quiet_hours(value: Any) -> tuple[QuietHours, ...]:
    """The rules of ``DISCORD_QUIET_HOURS`` (a text, or a list of texts); ValueError naming
    the rule that is wrong and why."""
    if value is None or value == "":
        return ()
    if isinstance(value, QuietHours):
        return (value,)
    items = value.split(";") if isinstance(value, str) else list(value)
    rules: list[QuietHours] = []
    for item in items:
        if isinstance(item, QuietHours):
            rules.append(item)
        elif str(item).strip():
            rules.append(_rule(str(item).strip()))
    return tuple(rules)


def _rule(text: str) -> QuietHours:
    types, sep, window = text.partition("=")
    found = _WINDOW.match(window) if sep else None
    if found is None:
        raise ValueError(
            f"{text[:60]!r} is not types=HH:MM-HH:MM [zone], e.g. general=22:00-07:00 Europe/Berlin"
        )
    try:
        scope = parse_scope(types)
    except ValueError as exc:
        raise ValueError(f"{text[:60]!r}: {exc}") from None
    h1, m1, h2, m2 = (int(found.group(i)) for i in range(1, 5))
    if h1 > 23 or h2 > 23 or m1 > 59 or m2 > 59:
        raise ValueError(f"{text[:60]!r}: hours are 00-23 and minutes 00-59")
    if (h1, m1) == (h2, m2):
        raise ValueError(f"{text[:60]!r}: the window starts and ends at the same time")
    zone = found.group(5) or "UTC"
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError  # only when quiet hours are set

    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"{text[:60]!r}: {zone[:40]!r} is not a time zone (an IANA name such as "
            "Europe/Berlin or UTC)"
        ) from None
    return QuietHours(scope, dt.time(h1, m1), dt.time(h2, m2), zone, text)
