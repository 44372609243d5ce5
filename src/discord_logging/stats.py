"""Counters for everything that happens to a notification, JSON-serialisable."""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any, Final

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

    def dropped(self, reason: str, alert_type: str | None = None, count: int = 1) -> None:
        """A record not delivered nor kept: counted by reason, never printed per record."""
        with self._lock:
            self._dropped[reason] += count
            if alert_type is not None:
                self._per_type.setdefault(alert_type, Counter())["dropped"] += count

    def dead_lettered(self, reason: str, alert_type: str, count: int = 1) -> None:
        """A record handed to the dead letters, by reason."""
        with self._lock:
            self._counts["dead_lettered"] += count
            self._dead[reason] += count
            self._per_type.setdefault(alert_type, Counter())["dead_lettered"] += count

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
