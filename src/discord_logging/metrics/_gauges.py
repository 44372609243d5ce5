"""The gauges' values: read from the handlers alive in this process, when collected."""

from __future__ import annotations

from collections import Counter

from ..stats import GAUGE_SOURCES
from ..wording import write_line

_SAID: set[str] = set()  # failures to read said in this process, each once


def read_gauges() -> dict[str, int]:
    """Queue depth and capacity, dead letters kept and open circuits, summed over this
    process's running handlers. Never starts a worker nor opens a store; a handler that
    cannot be read now (its store closing under the read) is skipped, the failure said once."""
    totals: Counter[str] = Counter()
    for source in list(GAUGE_SOURCES):
        try:
            totals.update(source._metric_gauges())
        except Exception as exc:  # noqa: BLE001 - a reader's callback must not raise
            said = f"discord-logging: metrics could not read a handler's gauges: {exc!r}"
            if said not in _SAID:
                _SAID.add(said)
                write_line(said)
    return dict(totals)
