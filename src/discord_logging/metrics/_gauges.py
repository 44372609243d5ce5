"""The gauges' values: read from the handlers alive in this process, when collected."""

from __future__ import annotations

from collections import Counter

from ..stats import GAUGE_SOURCES
from ..wording import write_line


def read_gauges() -> dict[str, int]:
    """Queue depth and capacity, dead letters kept and open circuits, summed over this
    process's running handlers. Never starts a worker nor opens a store; a handler that
    cannot be read now (closing) is skipped."""
    totals: Counter[str] = Counter()
    for source in list(GAUGE_SOURCES):
        try:
            totals.update(source._metric_gauges())
        except Exception as exc:  # noqa: BLE001 - a reader's callback must not raise
            write_line(f"discord-logging: metrics could not read a handler's gauges: {exc!r}")
    return dict(totals)
