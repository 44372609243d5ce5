"""Dead letters on disk, shared safely by every process using the store.

Letters live under ``<store>/deadletters/<webhook>/`` keyed by time, so each webhook's oldest
come first; ``<store>/deadletters-index`` maps ids to keys and holds redelivery claims.

No duplicates on replay: a letter whose notification has a Discord message id in the history
is never posted again, only forgotten. A claim (an atomic ``add`` with a lease) keeps two
processes from redelivering the same letter at once.
"""

from __future__ import annotations

import heapq
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import diskcache

from ..deadletters import DeadLetter, DeadLetterSink
from ..notification import Notification
from ._disk import CacheFolder, UnsafeStoreRow, open_cache
from .history import History, entry_key

CLAIM_LEASE: Final = 120.0  # seconds a redelivery claim holds before another process may try


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


class DurableDeadLetters(DeadLetterSink):
    """The dead-letter sink of a store; survives the process and is shared between processes."""

    durable = True

    def __init__(self, root: Path, history: History) -> None:
        self._folder = CacheFolder(root / "deadletters")
        self.root = self._folder.root
        self.history = history
        self._index = open_cache(root / "deadletters-index")
        self.refused_rows = 0
        self._refused: set[tuple[str, str]] = set()  # (webhook, key) rows refused on read
        # Ids this process has read from or written to the store. Only these can already be
        # stored (new notifications get new ids), so only these need the lookup and claim
        # cleanup on add: a burst of new letters costs two writes each, not four.
        self._known: set[str] = set()

    def _cache(self, webhook: str) -> diskcache.Cache:
        return self._folder.get(webhook)

    def webhooks(self) -> list[str]:
        """Webhooks (alert type names) that have dead letters."""
        return self._folder.names()

    # -- the sink interface ------------------------------------------------------------------

    def add(self, letter: DeadLetter) -> None:
        self.add_many([letter])

    def add_many(self, letters: list[DeadLetter]) -> None:
        """Write ``letters`` in one transaction per cache (bursts are written in batches)."""
        by_webhook: dict[str, list[DeadLetter]] = {}
        for letter in letters:
            by_webhook.setdefault(letter.webhook, []).append(letter)
        with self._index.transact():
            for webhook, group in by_webhook.items():
                cache = self._cache(webhook)
                with cache.transact():
                    for letter in group:
                        key = entry_key(letter.dead_at, letter.id)
                        if letter.id in self._known:
                            self._forget(letter.id)
                            self._index.delete(f"claim:{letter.id}")  # a failed redelivery
                        cache.set(key, letter.to_dict())
                        self._index.set(f"id:{letter.id}", [letter.webhook, key])
                        self._known.add(letter.id)

    def retryable(self, webhook: str, limit: int) -> list[DeadLetter]:
        found: list[DeadLetter] = []
        for letter in self._oldest_first(webhook):
            if len(found) >= limit:
                break
            if not letter.retryable:
                continue
            if self.already_delivered(letter.notification):
                self.remove(letter.id)  # Discord has it: never post it again
                continue
            if self.claim(letter.id):
                if self._index.get(f"id:{letter.id}") is None:
                    # Another process delivered and removed it after we read it: not again.
                    self.release(letter.id)
                    continue
                found.append(letter)
        return found

    def remove(self, letter_id: str) -> None:
        with self._index.transact():
            self._forget(letter_id)
        self._index.delete(f"claim:{letter_id}")

    def letters(self) -> list[DeadLetter]:
        streams = [self._keyed(webhook) for webhook in self.webhooks()]
        return [letter for _, letter in heapq.merge(*streams, key=lambda pair: pair[0])]

    def __len__(self) -> int:
        return sum(len(self._cache(webhook)) for webhook in self.webhooks())

    # -- operator and replay helpers ---------------------------------------------------------

    def get(self, letter_id: str) -> DeadLetter | None:
        """One letter by id (a unique prefix of it is enough), or None."""
        where = self._index.get(f"id:{letter_id}")
        if where is None:
            matches = [letter for letter in self.letters() if letter.id.startswith(letter_id)]
            return matches[0] if len(matches) == 1 else None
        webhook, key = where
        self._known.add(letter_id)
        return self._load(self._cache(webhook), key)

    def claim(self, letter_id: str, lease: float = CLAIM_LEASE) -> bool:
        """Take the right to redeliver ``letter_id`` for ``lease`` seconds (atomic). A claim
        held by a process that no longer exists (a killed replay) is taken over."""
        key = f"claim:{letter_id}"
        self._known.add(letter_id)
        if self._index.add(key, os.getpid(), expire=lease):
            return True
        holder = self._index.get(key)
        if isinstance(holder, int) and holder != os.getpid() and not _alive(holder):
            self._index.set(key, os.getpid(), expire=lease)
            return True
        return False  # held by a live process, this one included (it is already queued)

    def release(self, letter_id: str) -> None:
        """Give up a claim (the redelivery failed; the letter stays)."""
        self._index.delete(f"claim:{letter_id}")

    def already_delivered(self, notification: Notification) -> bool:
        """Whether the history records a Discord message id for ``notification``."""
        entry = self.history.entry_for(notification)
        return bool(entry and entry.get("message_id"))

    def purge(self, *, before: float | None = None, webhook: str | None = None) -> int:
        """Delete letters that died before ``before`` (all when None). Returns the count."""
        removed = 0
        for letter in self.letters():
            if webhook is not None and letter.webhook != webhook:
                continue
            if before is None or letter.dead_at < before:
                self.remove(letter.id)
                removed += 1
        # Rows refused on read (a planted pickle, a corrupt value) go too: they can't be shown.
        for hook, key in sorted(self._refused):
            if webhook is None or hook == webhook:
                self._cache(hook).delete(key)
                self._refused.discard((hook, key))
                removed += 1
        return removed

    # -- internals ---------------------------------------------------------------------------

    def _forget(self, letter_id: str) -> None:
        where = self._index.pop(f"id:{letter_id}", None)
        if where is not None:
            webhook, key = where
            self._cache(webhook).delete(key)

    def _load(self, cache: diskcache.Cache, key: str) -> DeadLetter | None:
        try:
            data: Any = cache.get(key)
            return DeadLetter.from_dict(data) if isinstance(data, dict) else None
        except (UnsafeStoreRow, json.JSONDecodeError, KeyError, ValueError, TypeError):
            self.refused_rows += 1
            return None

    def _keyed(self, webhook: str) -> Iterator[tuple[str, DeadLetter]]:
        cache = self._cache(webhook)
        try:
            for key in cache.iterkeys():
                letter = self._load(cache, key)
                if letter is None:
                    self._refused.add((webhook, key))
                else:
                    self._known.add(letter.id)
                    yield key, letter
        except UnsafeStoreRow:
            self.refused_rows += 1

    def _oldest_first(self, webhook: str) -> Iterator[DeadLetter]:
        for _, letter in self._keyed(webhook):
            yield letter

    def close(self) -> None:
        """Close this thread's connections to every open cache (see History.close)."""
        self._folder.close()
        self._index.close()
