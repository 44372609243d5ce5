"""What waits for the store's writer, and which errors are worth trying again.

Every write the delivery path makes (a dead letter, its removal, a history entry, a claim
renewal) is buffered here and written by the store's writer thread in batches, so the event
loop never waits for a commit.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Collection, Container, Iterable
from dataclasses import dataclass, field
from typing import Any, Final, TypeVar

import diskcache

from ..deadletters import DeadLetter

TRANSIENT_BACKOFF: Final = (0.02, 0.1, 0.3)  # seconds between tries of a locked or busy write

T = TypeVar("T")


def transient(exc: BaseException) -> bool:
    """Whether ``exc`` says the store is busy (another writer holds it), not broken."""
    if isinstance(exc, diskcache.Timeout):
        return True
    text = str(exc).lower()
    return isinstance(exc, sqlite3.OperationalError) and ("locked" in text or "busy" in text)


def retrying(write: Callable[[], T], sleep: Callable[[float], None] = time.sleep) -> T:
    """``write()``, tried again after a short backoff while it fails transiently; the last
    error (or any other) is raised. Only for the writer thread and close: it sleeps."""
    for pause in TRANSIENT_BACKOFF:
        try:
            return write()
        except Exception as exc:
            if not transient(exc):
                raise
        sleep(pause)
    return write()


@dataclass(slots=True)
class Batch:
    """One write's worth: letters by id (None: remove it), history entries, renewals."""

    letters: dict[str, DeadLetter | None] = field(default_factory=dict)
    entries: list[dict[str, Any]] = field(default_factory=list)
    renewals: set[str] = field(default_factory=set)

    @property
    def added(self) -> list[DeadLetter]:
        return [letter for letter in self.letters.values() if letter is not None]

    @property
    def removed(self) -> list[str]:
        return [letter_id for letter_id, letter in self.letters.items() if letter is None]

    def __len__(self) -> int:
        return len(self.letters) + len(self.entries)


class WriteBuffer:
    """The buffer between the delivery path and the writer; thread-safe. The last operation
    on an id wins (an add then a remove writes only the remove)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiting = Batch()
        self._writing = Batch()  # taken by a write that has not committed yet
        # Letters handed out for redelivery before they reached the disk: their claims were
        # taken then and must survive the write (which releases the claims of known ids).
        self._claimed: set[str] = set()

    def add(self, letter: DeadLetter) -> int:
        with self._lock:
            self._waiting.letters.pop(letter.id, None)  # keep the order of the latest
            self._waiting.letters[letter.id] = letter
            return len(self._waiting)

    def remove(self, letter_id: str) -> int:
        with self._lock:
            self._waiting.letters.pop(letter_id, None)
            self._waiting.letters[letter_id] = None
            return len(self._waiting)

    def record(self, entry: dict[str, Any]) -> int:
        with self._lock:
            self._waiting.entries.append(entry)
            return len(self._waiting)

    def renew(self, letter_ids: Iterable[str]) -> None:
        with self._lock:
            self._waiting.renewals.update(letter_ids)

    def take(self) -> Batch:
        """Everything waiting, now in flight until :meth:`done`."""
        with self._lock:
            batch, self._waiting = self._waiting, Batch()
            self._writing = batch
            return batch

    def done(self) -> None:
        with self._lock:
            self._writing = Batch()

    def __len__(self) -> int:
        return len(self._waiting)

    def letters_held(self) -> int:
        """Letter writes waiting or in flight (removals too: an upper bound of the letters in
        memory, counted without walking them; docs/architecture.md, "Memory in a flood")."""
        with self._lock:
            return len(self._waiting.letters) + len(self._writing.letters)

    def __bool__(self) -> bool:
        with self._lock:
            return bool(len(self._waiting) or self._waiting.renewals)

    def fates(self, letter_ids: Collection[str]) -> dict[str, bool]:
        """For the ids the buffer has a write for: True if it adds the letter, False if it
        removes it (the latest write wins)."""
        return {i: x is not None for i, x in self._snapshot() if i in letter_ids}

    def _snapshot(self) -> list[tuple[str, DeadLetter | None]]:
        """The letters in flight, then those waiting (later ones win), copied under the
        lock in one C-level step each. Walking them is left to the caller, outside the
        lock: a thread preempted mid-walk with the lock held would make the event loop's
        next add wait for it, and then for the GIL, a switch interval (5 ms) each time."""
        with self._lock:
            return list(self._writing.letters.items()) + list(self._waiting.letters.items())

    def removing(self) -> frozenset[str]:
        """Ids whose removal is waiting or in flight: not to be redelivered."""
        return frozenset(letter_id for letter_id, letter in self._snapshot() if letter is None)

    def fresh(self, webhook: str) -> list[DeadLetter]:
        """Retryable letters of ``webhook`` not written yet (waiting or in flight), oldest
        first, except those being removed and those already handed out for redelivery
        (:meth:`mark_claimed`): they are queued in this process and claimed by it."""
        found: dict[str, DeadLetter] = {}
        for letter_id, letter in self._snapshot():
            if letter is None:
                found.pop(letter_id, None)
            elif letter.destination == webhook and letter.retryable:
                found[letter_id] = letter
        with self._lock:
            claimed = self._claimed.intersection(found)
        for letter_id in claimed:
            del found[letter_id]
        return sorted(found.values(), key=lambda x: (x.dead_at, x.id))

    def mark_claimed(self, letter_ids: Iterable[str]) -> None:
        with self._lock:
            self._claimed.update(letter_ids)

    def claimed(self) -> frozenset[str]:
        with self._lock:
            return frozenset(self._claimed)

    def claimed_now(self) -> Container[str]:
        """:meth:`claimed` as a live view, for a write: a letter handed out between two of
        its chunks keeps the claim it took. Lanes' reads take turns with the writer and
        cannot come between chunks; this guards any other reader of the store."""
        return _LiveClaims(self)

    def written(self, letter_ids: Iterable[str]) -> None:
        """These letters reached the disk, or their removal did: a later add of one is a
        failed redelivery again, and a removed one is forgotten (the set would otherwise grow
        by every letter delivered before its first write, for the life of the process)."""
        with self._lock:
            self._claimed.difference_update(letter_ids)

    def new_letters(self, on_disk: Callable[[set[str]], set[str]] | None = None) -> int:
        """Letters waiting or in flight that are not on disk yet (``on_disk`` says which of
        the buffered ids are)."""
        ids = {letter_id for letter_id, letter in self._snapshot() if letter is not None}
        if not ids:
            return 0
        return len(ids - on_disk(ids)) if on_disk is not None else len(ids)


class _LiveClaims(Container[str]):
    """Whether an id is claimed, asked at the moment it matters (see ``claimed_now``)."""

    def __init__(self, pending: WriteBuffer) -> None:
        self._buffer = pending

    def __contains__(self, letter_id: object) -> bool:
        with self._buffer._lock:
            return letter_id in self._buffer._claimed
