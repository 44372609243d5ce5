"""The notification history: every notification's outcome, queryable, newest first.

One diskcache per alert type, keyed ``<created µs, zero-padded>-<id>``: keys sort by time, so
"the latest 50 of one type" reads 50 keys from the end of one index, whatever the store's size.
"""

from __future__ import annotations

import heapq
import json
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, Final

import diskcache

from ..alerts import normalize_alert_type
from ..notification import Notification, NotificationResult
from ._disk import CacheFolder, UnsafeStoreRow, put_many, values_of
from ._retention import created_of, excess_keys, export_rows, keys_before

TEXT_LIMIT: Final = 65_536  # characters of message and traceback kept per entry


def entry_key(created: float, notification_id: str) -> str:
    """Sortable key: microseconds since the epoch, zero-padded, then the id."""
    return f"{max(0, int(created * 1_000_000)):017d}-{notification_id}"


def make_entry(
    notification: Notification, result: NotificationResult, webhook: str, sent_at: float
) -> dict[str, Any]:
    """The history entry for one outcome (JSON; the webhook id, never the token)."""
    n = notification
    return {
        "id": n.id,
        "created": n.created,
        "sent_at": sent_at,
        "alert_type": n.alert_type,
        "webhook": webhook,
        "webhook_id": result.webhook_id,
        "title": n.title,
        "message": n.message[:TEXT_LIMIT],
        "exc_text": n.exc_text[:TEXT_LIMIT] if n.exc_text else None,
        "level": n.level,
        "logger": n.logger,
        "status": result.status.value,
        "attempts": result.attempts,
        "latency": result.latency,
        "http_status": result.http_status,
        "error_code": result.error_code,
        "error": result.error,
        "message_id": result.message_id,
        "fingerprint": n.fingerprint,
        "count": n.count,
        "first_seen": n.first_seen,
    }


class History:
    """Read and write history entries under ``<store>/history/<alert type>/``."""

    def __init__(self, root: Path) -> None:
        self._folder = CacheFolder(root / "history")
        self.root = self._folder.root
        self.refused_rows = 0

    def _cache(self, alert_type: str) -> diskcache.Cache:
        # normalize_alert_type also keeps the name safe as a directory name
        return self._folder.get(normalize_alert_type(alert_type))

    def alert_types(self) -> list[str]:
        """Alert types that have a history."""
        return self._folder.names()

    def record(self, notification: Notification, result: NotificationResult, webhook: str) -> None:
        """Write (or overwrite) the entry for ``notification``'s latest outcome."""
        self.record_many([make_entry(notification, result, webhook, time.time())])

    def record_many(self, entries: list[dict[str, Any]]) -> None:
        """Write entries made by :func:`make_entry`, one transaction per alert type."""
        by_type: dict[str, list[dict[str, Any]]] = {}
        for entry in entries:
            by_type.setdefault(entry["alert_type"], []).append(entry)
        for kind, group in by_type.items():
            rows = {entry_key(entry["created"], entry["id"]): entry for entry in group}
            put_many(self._cache(kind), rows, None)

    def entry_for(self, notification: Notification) -> dict[str, Any] | None:
        """The stored entry of ``notification``, if any."""
        key = entry_key(notification.created, notification.id)
        return self._read(self._cache(notification.alert_type), key)

    def delivered(self, notifications: list[Notification]) -> set[str]:
        """Ids of those ``notifications`` whose entry records a Discord message id (one
        statement per alert type)."""
        by_type: dict[str, list[Notification]] = {}
        for n in notifications:
            by_type.setdefault(n.alert_type, []).append(n)
        found: set[str] = set()
        for kind, group in by_type.items():
            keys = {entry_key(n.created, n.id): n.id for n in group}
            for key, entry in values_of(self._cache(kind), list(keys), time.time()).items():
                if isinstance(entry, dict) and entry.get("message_id"):
                    found.add(keys[key])
        return found

    def _read(self, cache: diskcache.Cache, key: str) -> dict[str, Any] | None:
        try:
            value = cache.get(key)
        except (UnsafeStoreRow, json.JSONDecodeError):
            self.refused_rows += 1
            return None
        return value if isinstance(value, dict) else None

    def _newest_first(self, alert_type: str) -> Iterator[tuple[str, str]]:
        cache = self._cache(alert_type)
        try:
            for key in cache.iterkeys(reverse=True):
                yield key, alert_type
        except UnsafeStoreRow:
            self.refused_rows += 1

    def query(
        self,
        *,
        alert_type: str | None = None,
        status: str | None = None,
        since: float | None = None,
        until: float | None = None,
        text: str | None = None,
        limit: int = 50,
    ) -> list[dict[str, Any]]:
        """Entries matching every filter given, newest first, at most ``limit``."""
        types = [normalize_alert_type(alert_type)] if alert_type else self.alert_types()
        streams = [self._newest_first(kind) for kind in types]
        merged: Iterable[tuple[str, str]] = (
            streams[0] if len(streams) == 1 else heapq.merge(*streams, reverse=True)
        )
        needle = text.lower() if text else None
        found: list[dict[str, Any]] = []
        for key, kind in merged:
            if len(found) >= limit:
                break
            created = created_of(key)
            if until is not None and created > until:
                continue
            if since is not None and created < since:
                if len(types) == 1:
                    break  # keys are in time order: nothing older can match
                continue
            entry = self._read(self._cache(kind), key)
            if entry is None:
                continue
            if status is not None and entry.get("status") != status:
                continue
            if needle is not None and not _matches(entry, needle):
                continue
            found.append(entry)
        return found

    def counts(self, since: float | None = None) -> dict[str, dict[str, int]]:
        """Entries per alert type and status since ``since`` (all when None)."""
        result: dict[str, dict[str, int]] = {}
        for kind in self.alert_types():
            cache = self._cache(kind)
            for key, _ in self._newest_first(kind):
                if since is not None and created_of(key) < since:
                    break
                entry = self._read(cache, key)
                if entry is None:
                    continue
                status = str(entry.get("status"))
                by_status = result.setdefault(kind, {})
                by_status[status] = by_status.get(status, 0) + 1
        return result

    def purge(self, *, before: float, export: Path | None = None) -> int:
        """Delete entries created before ``before``; append them to ``export`` (JSON Lines)
        first when given. Returns how many were deleted."""
        removed = 0
        for kind in self.alert_types():
            cache = self._cache(kind)
            removed += self._delete(cache, keys_before(cache, before), export)
        return removed

    def shrink(self, max_bytes: int, export: Path | None = None) -> int:
        """Delete the oldest entries until the history's estimated size is under ``max_bytes``."""
        removed = 0
        kinds = self.alert_types()
        share = max_bytes // max(1, len(kinds))
        for kind in kinds:
            cache = self._cache(kind)
            removed += self._delete(cache, excess_keys(cache, share, self._read), export)
        return removed

    def _delete(self, cache: diskcache.Cache, keys: list[str], export: Path | None) -> int:
        if export is not None and keys:
            export_rows(export, (e for key in keys if (e := self._read(cache, key)) is not None))
        for key in keys:
            cache.delete(key)
        return len(keys)

    def close(self) -> None:
        """Close this thread's connections to every open cache (see CacheFolder.close)."""
        self._folder.close()


def _matches(entry: dict[str, Any], needle: str) -> bool:
    for field in ("title", "message", "logger", "error", "exc_text"):
        value = entry.get(field)
        if isinstance(value, str) and needle in value.lower():
            return True
    return False
