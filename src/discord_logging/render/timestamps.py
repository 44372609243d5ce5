"""Discord timestamps: ``<t:UNIX:STYLE>`` renders in each reader's own time zone and locale.

Discord renders them in message content, embed descriptions and field values, not in embed
titles, footers or author names (discord-api.md, "Timestamps readers see in their own time
zone"): templates use them in the description and fields; titles keep plain text.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Final

from ..wording import counted

# t 16:20, T 16:20:30, d 20/04/2021, D 20 April 2021, f 20 April 2021 16:20,
# F Tuesday, 20 April 2021 16:20, R "2 minutes ago".
STYLES: Final = frozenset("tTdDfFR")


def discord_time(moment: float | datetime | None, style: str = "f") -> str:
    """``<t:SECONDS:STYLE>`` for ``moment`` (epoch seconds or an aware datetime); "" for None.
    Raises ValueError for a style Discord does not know (a template error at start-up)."""
    if style not in STYLES:
        raise ValueError(f"discord_time style {style!r} is not one of {''.join(sorted(STYLES))}")
    if moment is None:
        return ""
    seconds = moment.timestamp() if isinstance(moment, datetime) else float(moment)
    return f"<t:{int(seconds)}:{style}>"


MARKUP: Final = re.compile(r"<t:(-?\d+)(?::([tTdDfFR]))?>")
# What each style shows, as Discord's English client shows it; "f" when none is given.
FORMATS: Final = {
    "t": "%H:%M",
    "T": "%H:%M:%S",
    "d": "%d/%m/%Y",
    "D": "%d %B %Y",
    "f": "%d %B %Y %H:%M",
    "F": "%A, %d %B %Y %H:%M",
}


def readable_times(text: str, now: float) -> str:
    """``text`` with each ``<t:SECONDS:STYLE>`` shown as a terminal reader would see it in
    Discord: the time in this machine's zone in the style's format, or for ``R`` how long
    before or after ``now`` (epoch seconds)."""

    def shown(match: re.Match[str]) -> str:
        seconds, style = int(match.group(1)), match.group(2) or "f"
        if style == "R":
            return relative(seconds - now)
        return datetime.fromtimestamp(seconds).strftime(FORMATS[style])

    return MARKUP.sub(shown, text)


def relative(offset: float) -> str:
    """``offset`` seconds from now as words: "in 5 minutes", "2 hours ago", "now"."""
    size = abs(offset)
    for unit, length in (("day", 86_400), ("hour", 3_600), ("minute", 60), ("second", 1)):
        if size >= length:
            amount = counted(int(size // length), unit)
            return f"in {amount}" if offset > 0 else f"{amount} ago"
    return "now"
