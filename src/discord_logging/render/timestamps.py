"""Discord timestamps: ``<t:UNIX:STYLE>`` renders in each reader's own time zone and locale.

Discord renders them in message content, embed descriptions and field values, not in embed
titles, footers or author names (discord-api.md, "Timestamps readers see in their own time
zone"): templates use them in the description and fields; titles keep plain text.
"""

from __future__ import annotations

from datetime import datetime
from typing import Final

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
