"""Counters for everything that happens to a notification, JSON-serialisable."""

from __future__ import annotations

import threading
import time
import weakref
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any, Final, Protocol

from .wording import write_line

COUNTERS: Final = (
    "emitted",
    "submitted",
    "delivered",
    "messages_sent",
    "embeds_sent",
    "digests_sent",
    "aggregated",
    "retried",
    "rate_limited",
    "banned",
    "dead_lettered",
    "redelivered",
    "template_errors",
    "probes",
    "store_errors",
    "internal_errors",
    "dead_letters_evicted",  # memory dead letters dropped past the sink's capacity: lost
    "edits_sent",
    "updates_dropped",
    "forum_posts",
    "forum_learned",
    "buttons_dropped",
    "journal_full",  # records not journaled: the journal was at DISCORD_JOURNAL_MAX_BYTES
    "journal_recovered",  # letters taken from dead processes' journals into the store
    "journal_torn",  # torn or unreadable frames met in those journals (ignored)
    "journal_errors",  # the journal could not be written (records then only in memory)
    "muted",  # held by a mute: in the history as muted, never sent
    "mute_errors",  # the shared mutes could not be read or written (the last read stay)
)
PER_TYPE: Final = ("emitted", "delivered", "aggregated", "dead_lettered", "dropped", "muted")

CountListener = Callable[[str, float, "str | None", "str | None"], None]
"""Told of every count: ``(name, value, alert_type, reason)``. ``name`` is a counter of
:data:`COUNTERS`, ``"dropped"`` or ``"dead_lettered"`` (``reason`` set), ``"request"`` (an
answer from Discord; ``reason`` its HTTP status or ``"none"``) or ``"delivery_seconds"`` (a
record's latency, ``value`` in seconds). Called on the thread that counted, after the lock."""

_LISTENERS: list[CountListener] = []


def add_listener(listener: CountListener) -> None:
    """Tell ``listener`` of every count in this process (``discord_logging.metrics``)."""
    if listener not in _LISTENERS:
        _LISTENERS.append(listener)


def remove_listener(listener: CountListener) -> None:
    """Stop telling ``listener``; unknown listeners are ignored."""
    if listener in _LISTENERS:
        _LISTENERS.remove(listener)


_TELLING = threading.local()


def _tell(name: str, value: float, alert_type: str | None, reason: str | None) -> None:
    # A backend that logs while counting (a warning of its SDK) reaches the handler, which
    # may count again (a drop): that count is not told, so it cannot loop.
    if getattr(_TELLING, "active", False):
        return
    _TELLING.active = True
    try:
        for listener in tuple(_LISTENERS):
            try:
                listener(name, value, alert_type, reason)
            except Exception as exc:  # noqa: BLE001 - metrics must never stop delivery
                remove_listener(listener)
                write_line(f"discord-logging: a metrics listener failed and was removed: {exc!r}")
    finally:
        _TELLING.active = False


class GaugeSource(Protocol):
    """What the metrics' gauges read: a handler alive in this process."""

    def _metric_gauges(self) -> Mapping[str, int]: ...


GAUGE_SOURCES: weakref.WeakSet[GaugeSource] = weakref.WeakSet()
"""Handlers whose queue depth and capacity, dead letters kept and open circuits the gauges
read (held weakly; each handler adds itself when it is created)."""


class DeliveryStats:
    """Thread-safe counters; ``snapshot()`` is what ``handler.stats()`` returns."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()
        self._dropped: Counter[str] = Counter()
        self._dead: Counter[str] = Counter()
        self._per_type: dict[str, Counter[str]] = {}
        self.coordination: Any = None
        """The coordinator of the shared limits (set by the notifier): its backend and counters
        are in the snapshot."""

    def add(self, name: str, count: int = 1, alert_type: str | None = None) -> None:
        """Add ``count`` to counter ``name`` (and to the alert type's, when given)."""
        with self._lock:
            self._counts[name] += count
            if alert_type is not None:
                self._per_type.setdefault(alert_type, Counter())[name] += count
        if _LISTENERS:
            _tell(name, count, alert_type, None)

    def dropped(self, reason: str, alert_type: str | None = None, count: int = 1) -> None:
        """A record not delivered nor kept: counted by reason, never printed per record."""
        with self._lock:
            self._dropped[reason] += count
            if alert_type is not None:
                self._per_type.setdefault(alert_type, Counter())["dropped"] += count
        if _LISTENERS:
            _tell("dropped", count, alert_type, reason)

    def dead_lettered(self, reason: str, alert_type: str, count: int = 1) -> None:
        """A record handed to the dead letters, by reason."""
        with self._lock:
            self._counts["dead_lettered"] += count
            self._dead[reason] += count
            self._per_type.setdefault(alert_type, Counter())["dead_lettered"] += count
        if _LISTENERS:
            _tell("dead_lettered", count, alert_type, reason)

    @staticmethod
    def answered(status: int | None) -> None:
        """Discord answered a request with HTTP ``status`` (None: no answer). Only listeners
        see it: the totals are ``messages_sent``, ``rate_limited`` and ``retried``."""
        if _LISTENERS:
            _tell("request", 1, None, str(status) if status is not None else "none")

    @staticmethod
    def delivered_since(created: float, alert_type: str | None) -> None:
        """A record logged at ``created`` (``time.time()``; 0: unknown) was delivered now:
        its latency, for listeners only."""
        if _LISTENERS and created > 0:
            _tell("delivery_seconds", max(0.0, time.time() - created), alert_type, None)

    def get(self, name: str) -> int:
        """One counter's value."""
        with self._lock:
            return self._counts[name]

    def snapshot(self, **extra: Any) -> dict[str, Any]:
        """All counters as plain data; ``extra`` (queue depth, ...) is merged in."""
        with self._lock:
            data: dict[str, Any] = {name: self._counts[name] for name in COUNTERS}
            messages = self._counts["messages_sent"]
            data["embeds_per_message"] = (
                round(self._counts["embeds_sent"] / messages, 2) if messages else 0.0
            )
            sent = self._counts["delivered"] + self._counts["redelivered"]
            data["records_per_message"] = round(sent / messages, 2) if messages else 0.0
            data["dropped"] = dict(self._dropped)
            data["dead_lettered_by_reason"] = dict(self._dead)
            data["per_alert_type"] = {
                kind: {name: counts[name] for name in PER_TYPE}
                for kind, counts in sorted(self._per_type.items())
            }
        coordinator = self.coordination
        if coordinator is not None:
            counters = coordinator.stats
            data["coordination"] = {
                "backend": coordinator.backend,
                "backend_errors": counters.backend_errors,
                "fallbacks": counters.fallbacks,
                "fallback_grants": counters.fallback_grants,
            }
        data.update(extra)
        return data
