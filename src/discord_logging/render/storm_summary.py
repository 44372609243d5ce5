"""A storm summary for people (pure): what differed among the records folded into a count.

Aggregation keeps the time and text of a storm's first records (:mod:`.aggregation`). Here
they become a sample of the distinct messages for the embed, and a listing of every kept
record, one per line, for the attached file, so "order 1000 ... (x 100)" also says which
100 orders.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from ..notification import Notification
from .message_limits import text_length

SAMPLE_LINES: Final = 8  # distinct messages shown in the embed
SAMPLE_LINE_UNITS: Final = 150  # each cut to this many characters there
STORM_ATTACHMENT: Final = "records.txt"
NEWLINE_MARK: Final = " ⏎ "  # a record is one line in the listing; its line breaks show as this


@dataclass(frozen=True, slots=True)
class DistinctMessage:
    """One text among a storm's kept records: when it first came and how often."""

    first: float
    text: str
    count: int


def flatten(text: str) -> str:
    """``text`` on one line, its line breaks marked."""
    return NEWLINE_MARK.join(text.splitlines()) if "\n" in text or "\r" in text else text


def distinct_messages(samples: Sequence[tuple[float, str]]) -> list[DistinctMessage]:
    """The distinct texts of ``samples``, in the order they first occurred."""
    seen: dict[str, list[float | int]] = {}
    for created, text in samples:
        entry = seen.get(text)
        if entry is None:
            seen[text] = [created, 1]
        else:
            entry[1] += 1
    return [DistinctMessage(float(first), text, int(n)) for text, (first, n) in seen.items()]


def pick(distinct: Sequence[DistinctMessage], lines: int = SAMPLE_LINES) -> list[DistinctMessage]:
    """At most ``lines`` of ``distinct``, spread evenly from the first to the last, in order."""
    if len(distinct) <= lines:
        return list(distinct)
    if lines <= 1:
        return list(distinct[:lines])
    step = (len(distinct) - 1) / (lines - 1)
    return [distinct[round(i * step)] for i in range(lines)]


def is_summary(notification: Notification) -> bool:
    """Whether ``notification`` is a storm summary that kept its records' texts."""
    return notification.count > 1 and bool(notification.samples)


def needs_listing(notification: Notification) -> bool:
    """Whether a summary's records go along as a file: the embed's sample has no whole line
    for each of them (more records, repeated texts, long texts, or texts not kept). Not for
    an incident's running update: its records go along with its last update."""
    n = notification
    if not is_summary(n) or n.ongoing:
        return False
    if n.count != len(n.samples) or len(n.samples) > SAMPLE_LINES:
        return True
    texts = [flatten(text) for _, text in n.samples]
    return len(set(texts)) < len(texts) or any(text_length(t) > SAMPLE_LINE_UNITS for t in texts)


def listing(notification: Notification) -> str:
    """Every kept record of a summary, one ``time  message`` line each, for the attached file.

    Empty for a notification that is no summary with samples."""
    n = notification
    if not is_summary(n):
        return ""
    since = _stamp(n.first_seen if n.first_seen is not None else n.samples[0][0])
    head = f"{n.count} records since {since}"
    if n.samples_not_kept:
        head += f"; the first {len(n.samples)} are listed"
    lines = [head + ":"]
    lines.extend(f"{_stamp(created)}  {flatten(text)}" for created, text in n.samples)
    if n.samples_not_kept:
        lines.append(f"… and {n.samples_not_kept} more not kept")
    return "\n".join(lines)


def _stamp(created: float) -> str:
    moment = datetime.fromtimestamp(created, UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S.") + f"{moment.microsecond // 1000:03d} UTC"
