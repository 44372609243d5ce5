"""Dead letters on disk, shared safely by every process using the store.

Letters live in one diskcache per webhook, keyed by time so each webhook's oldest come first,
and in two key ranges: retryable letters under ``<store>/deadletters/<webhook>/``, letters
that wait for an operator under ``<store>/deadletters-held/<webhook>/``. Finding a webhook's
retryable letters therefore reads only retryable rows, oldest first, however many others are
kept. ``<store>/deadletters-index`` maps ids to keys (``[webhook, key]`` for a retryable
letter, ``[webhook, key, "held"]`` for a held one) and holds redelivery claims.

Stores written before the split keep every letter under ``deadletters/``: they are read as
they are, and an operator-only letter found there is moved to ``deadletters-held/`` by the
store's writer, a few at a time, the first time redelivery walks past it.

No duplicates on replay: a letter whose notification has a Discord message id in the history
is never posted again, only forgotten. A claim (an atomic ``add`` with a lease) keeps two
processes from redelivering the same letter at once; the claims one ``retryable`` call takes
are written in one transaction. A letter taken over from a holder that died or outlived its
lease is handed out as ``uncertain``: that holder may have had it in flight.
"""

from __future__ import annotations

import heapq
import json
import os
import threading
import time
from collections.abc import Callable, Collection, Container, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final

import diskcache

from ..deadletters import DeadLetter, DeadLetterSink
from ..notification import Notification
from ._claims import (
    CLAIM_LEASE,
    CLAIM_MEMORY,
    LetterClaims,
    as_taken_over,
    claim_row,
    holds,
    taken_over,
)
from ._disk import (
    CacheFolder,
    UnsafeStoreRow,
    count_keys,
    delete_many,
    keys_after,
    open_cache,
    put_many,
    values_of,
)
from ._full import DiskFull, chunks, is_full, make_room
from ._holders import Liveness
from ._letter_upkeep import HELD, LetterUpkeep, id_of
from .history import History, entry_key

# Keys one retryable() call may pass over (claimed by a live process, refused) beyond its
# limit: bounds the call's transaction (and its share of the GIL). The next call goes on
# where it stopped, so in a fleet, where the oldest letters are often claimed by processes
# still sending them, successive looks reach the free letters behind them.
SCAN_SLACK: Final = 100
PAGE: Final = 100  # keys read per statement by retryable()


class DurableDeadLetters(LetterClaims, LetterUpkeep, DeadLetterSink):
    """The dead-letter sink of a store; survives the process and is shared between processes."""

    durable = True

    def __init__(self, root: Path, history: History) -> None:
        self._store_root = root
        self._folder = CacheFolder(root / "deadletters")
        self._held = CacheFolder(root / "deadletters-held")
        self.root = self._folder.root
        self.history = history
        self._index = open_cache(root / "deadletters-index")
        self.refused_rows = 0
        self.rows_read = 0  # letters loaded from disk: what a read costs
        self._refused: set[tuple[str, str]] = set()  # (webhook, key) rows refused on read
        # Operator-only letters found among the retryable ones (a store written before the
        # split), by id: (webhook, key, letter). Moved by move_misplaced(), skipped meanwhile.
        self._misplaced: dict[str, tuple[str, str, DeadLetter]] = {}
        self._misplaced_lock = threading.Lock()
        self._resume_after: dict[str, str] = {}  # webhook -> key a retryable() scan stopped at
        # Index transactions of this process's threads (the writer, the event loop) take
        # turns on a lock: a waiter wakes the moment the other commits, where SQLite's busy
        # handler would poll with growing sleeps.
        self._turn = threading.RLock()

        self._callers_waiting = 0  # threads other than a bulk writer waiting for their turn
        self._count_lock = threading.Lock()

    @contextmanager
    def _transaction(self, bulk: bool = False) -> Iterator[None]:
        """An index transaction. ``bulk`` ones (the writer's chunks) let waiting callers go
        first: Python's locks are not fair, and the writer would otherwise take the lock
        back chunk after chunk while the event loop waits for it."""
        if bulk:
            while self._callers_waiting:
                time.sleep(0.0005)
            with self._turn, self._index.transact():
                yield
            time.sleep(0)  # hand the GIL over between chunks
            return
        with self._count_lock:
            self._callers_waiting += 1
        try:
            self._turn.acquire()
        finally:
            with self._count_lock:
                self._callers_waiting -= 1
        try:
            with self._index.transact():
                yield
        finally:
            self._turn.release()

    def _cache(self, webhook: str, held: bool = False) -> diskcache.Cache:
        return (self._held if held else self._folder).get(webhook)

    def _caches(self) -> list[tuple[str, diskcache.Cache]]:
        found = [(name, self._folder.get(name)) for name in self._folder.names()]
        return found + [(name, self._held.get(name)) for name in self._held.names()]

    def webhooks(self) -> list[str]:
        """Webhooks (alert type names) that have dead letters."""
        return sorted(set(self._folder.names()) | set(self._held.names()))

    # -- the sink interface ------------------------------------------------------------------

    def add(self, letter: DeadLetter) -> None:
        self.write([letter], ())

    def add_many(self, letters: list[DeadLetter]) -> None:
        """Write ``letters`` in one transaction per cache (bursts are written in batches)."""
        self.write(letters, ())

    def write(
        self,
        letters: Iterable[DeadLetter],
        removed: Iterable[str],
        keep_claims: Container[str] = frozenset(),
    ) -> None:
        """Add ``letters`` and forget the ids ``removed``, in transactions (``chunks``). The
        claim of a letter added again is released (a failed redelivery), except for ids in
        ``keep_claims`` (handed out for redelivery before they were first written)."""
        # Removals first: on a full volume they free the room the letters need (an id is
        # never both added and removed in one write).
        for _, gone in chunks(self.root, list(removed)):
            with self._transaction(bulk=True):
                self._forget(gone, claims=True)
        batch = list(letters)
        for start, chunk in chunks(self.root, batch):
            try:
                make_room(self.root, chunk)
                self._write_chunk(chunk, keep_claims)
            except Exception as exc:
                if not is_full(exc):
                    raise
                # The chunks committed before stay written (docs/architecture.md, "A full disk").
                cause = None if isinstance(exc, DiskFull) else exc  # under the reserve
                raise DiskFull(batch[:start], batch[start:], cause) from exc

    def _write_chunk(self, letters: list[DeadLetter], keep_claims: Container[str]) -> None:
        groups: dict[tuple[str, bool], list[DeadLetter]] = {}
        for letter in letters:
            groups.setdefault((letter.folder, not letter.retryable), []).append(letter)
        with self._transaction(bulk=True):
            # One read for the chunk: which are stored already (a failed redelivery, kept
            # again). The set of ids ever seen that stood in for this grew for a process's life.
            stored = values_of(self._index, [f"id:{x.id}" for x in letters], time.time())
            places: dict[str, Any] = {}
            for (webhook, held), group in groups.items():
                cache = self._cache(webhook, held)
                rows: dict[str, Any] = {}
                with cache.transact():
                    for letter in group:
                        key = entry_key(letter.dead_at, letter.id)
                        if f"id:{letter.id}" in stored:
                            # A failed redelivery releases its claim (unless handed out again).
                            self._forget([letter.id], claims=letter.id not in keep_claims)
                        rows[key] = letter.to_dict()
                        places[f"id:{letter.id}"] = [webhook, key, HELD] if held else [webhook, key]
                    put_many(cache, rows, None)
            put_many(self._index, places, None)

    def retryable(
        self,
        webhook: str,
        limit: int,
        *,
        skip: Collection[str] = frozenset(),
        fresh: Callable[[], Sequence[DeadLetter]] = tuple,
        on_fresh: Callable[[list[str]], None] = lambda ids: None,
    ) -> list[DeadLetter]:
        """Up to ``limit`` retryable letters of ``webhook``, oldest first, each claimed for
        this process; ids in ``skip`` (being removed) are passed over. Reads at most
        ``limit + SCAN_SLACK`` keys, all from the webhook's retryable range (a call that ran
        out of them passing over letters others hold leaves the next one a place to go on
        from); the claims are one transaction. When the disk has fewer, ``fresh`` letters
        (buffered, not written yet) fill up, claimed too; ``on_fresh`` gets their ids inside
        the transaction. ``fresh`` is asked only then: gathering them walks the writer's
        buffer."""
        found: list[DeadLetter] = []
        budget = limit + SCAN_SLACK
        cache = self._cache(webhook)
        # Where the last call ran out of budget passing over letters others hold: go on from
        # there (and round to the oldest at the end), so looks walk past any number of them.
        start = after = self._resume_after.pop(webhook, None)
        wrapped = start is None
        self.holder  # noqa: B018 - its lock taken before any claim names it
        liveness = self.liveness()
        with self._transaction():
            while len(found) < limit and budget > 0:
                keys = keys_after(cache, after, min(PAGE, budget))
                if wrapped and start is not None:
                    keys = [key for key in keys if key <= start]  # once round, not twice
                if not keys:
                    if wrapped:
                        break
                    wrapped, after = True, None
                    continue
                after = keys[-1]
                now = time.time()
                ids = {key: id_of(key) for key in keys}
                claims = values_of(self._index, [f"claim:{i}" for i in ids.values()], now)
                wanted = [
                    key
                    for key, letter_id in ids.items()
                    if letter_id not in skip
                    and letter_id not in self._misplaced
                    and not holds(claims.get(f"claim:{letter_id}"), now, liveness)
                ]
                if len(wanted) > limit - len(found):  # read no more letters than needed
                    wanted = wanted[: limit - len(found)]
                    after = wanted[-1]
                budget -= keys.index(after) + 1  # keys passed: the next page starts after
                over = {
                    i for i in ids.values() if taken_over(claims.get(f"claim:{i}"), now, liveness)
                }
                page = {key: ids[key] for key in wanted}
                self._claim_page(webhook, cache, page, limit, found, over=over)
            if budget <= 0 and len(found) < limit and after is not None:
                self._resume_after[webhook] = after
            if len(found) < limit:
                self._claim_fresh(fresh(), limit, found, on_fresh, liveness)
        return found

    def scan_cut_short(self, webhook: str) -> bool:
        """Whether the last retryable() call for ``webhook`` ran out of its scan budget."""
        return webhook in self._resume_after

    def _claim_page(
        self,
        webhook: str,
        cache: diskcache.Cache,
        wanted: dict[str, str],
        limit: int,
        found: list[DeadLetter],
        *,
        over: Container[str],
    ) -> None:
        """Read the letters of ``wanted`` (key -> id) and claim, into ``found``, those still
        there and retryable, up to ``limit`` (those whose ids are in ``over``, taken over, as
        uncertain); inside retryable()'s transaction."""
        now = time.time()
        row = claim_row(self.holder, now, CLAIM_LEASE)
        present = values_of(self._index, [f"id:{letter_id}" for letter_id in wanted.values()], now)
        values = values_of(cache, list(wanted), now)
        letters = []
        for key, letter_id in wanted.items():
            if f"id:{letter_id}" not in present or key not in values:
                continue  # removed by another thread or process since
            letter = self._decode(values[key])
            if letter is None:
                self._refused.add((webhook, key))
            elif not letter.retryable:
                with self._misplaced_lock:
                    self._misplaced[letter.id] = (webhook, key, letter)
            else:
                letters.append(letter)
        delivered = self.history.delivered([x.notification for x in letters])
        claimed: dict[str, Any] = {}
        for letter in letters:
            if letter.id in delivered:
                self._forget([letter.id], claims=True)  # Discord has it: never post it again
            elif len(found) < limit:
                claimed[f"claim:{letter.id}"] = row
                found.append(as_taken_over(letter) if letter.id in over else letter)
        # Atomic: this transaction has held the index's write lock since the claims
        # were read, so no other process can have claimed these meanwhile.
        put_many(self._index, claimed, CLAIM_MEMORY)

    def _claim_fresh(
        self,
        fresh: Sequence[DeadLetter],
        limit: int,
        found: list[DeadLetter],
        on_fresh: Callable[[list[str]], None],
        liveness: Liveness,
    ) -> None:
        now = time.time()
        row = claim_row(self.holder, now, CLAIM_LEASE)
        taken = {x.id for x in found}
        candidates = [x for x in fresh if x.id not in taken]
        claimed: dict[str, Any] = {}
        # A page at a time, as many as still wanted: the writer's buffer may hold thousands.
        while candidates and len(found) < limit:
            page, candidates = candidates[: limit - len(found)], candidates[limit - len(found) :]
            claims = values_of(self._index, [f"claim:{x.id}" for x in page], now)
            for letter in page:
                held = claims.get(f"claim:{letter.id}")
                if not holds(held, now, liveness):
                    claimed[f"claim:{letter.id}"] = row
                    found.append(as_taken_over(letter) if held is not None else letter)
        if claimed:
            on_fresh([key[len("claim:") :] for key in claimed])
            put_many(self._index, claimed, CLAIM_MEMORY)

    def adopt(self, letters: list[DeadLetter]) -> int:
        """Write ``letters`` except those already kept or whose notification the history
        records as delivered (a recovery cut short and done again); returns how many."""
        known = self.kept_ids([letter.id for letter in letters])
        known |= self.history.delivered([letter.notification for letter in letters])
        fresh = [letter for letter in letters if letter.id not in known]
        self.write(fresh, ())
        return len(fresh)

    def remove(self, letter_id: str) -> None:
        self.write((), [letter_id])

    def reindex(self) -> int:
        """Put every readable letter back in the index (after a damaged index was set
        aside); returns how many. Claims are not restored: they were only leases."""
        places: dict[str, Any] = {}
        for folder, held in ((self._folder, False), (self._held, True)):
            for webhook in folder.names():
                for key, letter in self._keyed(webhook, folder.get(webhook)):
                    places[f"id:{letter.id}"] = [webhook, key, HELD] if held else [webhook, key]
        with self._transaction(bulk=True):
            put_many(self._index, places, None)
        return len(places)

    def kept_ids(self, letter_ids: Collection[str]) -> set[str]:
        """Which of ``letter_ids`` are on disk (one index read)."""
        keys = [f"id:{letter_id}" for letter_id in letter_ids]
        return {key[len("id:") :] for key in values_of(self._index, keys, time.time())}

    def letters(self) -> list[DeadLetter]:
        streams = [self._keyed(webhook, cache) for webhook, cache in self._caches()]
        return [letter for _, letter in heapq.merge(*streams, key=lambda pair: pair[0])]

    def __len__(self) -> int:
        return sum(len(cache) for _, cache in self._caches())

    def count_ids(self, pattern: str) -> int:
        """How many kept letters have an id matching the GLOB ``pattern`` (one index query)."""
        return count_keys(self._index, "id:" + pattern)

    def probe(self) -> None:
        """Write and delete a row of the index: raises if the disk cannot take a write."""
        with self._transaction():
            self._index.set("probe", os.getpid())
            self._index.delete("probe")

    def already_delivered(self, notification: Notification) -> bool:
        """Whether the history records a Discord message id for ``notification``."""
        entry = self.history.entry_for(notification)
        return bool(entry and entry.get("message_id"))

    # -- operator and replay helpers ---------------------------------------------------------

    def get(self, letter_id: str) -> DeadLetter | None:
        """One letter by id (a unique prefix of it is enough), or None."""
        where = self._index.get(f"id:{letter_id}")
        if where is None:
            matches = [letter for letter in self.letters() if letter.id.startswith(letter_id)]
            return matches[0] if len(matches) == 1 else None
        return self._load(self._cache(where[0], len(where) > 2), where[1])

    # -- internals ---------------------------------------------------------------------------

    def _forget(self, letter_ids: list[str], claims: bool = False) -> None:
        """Delete these letters, their index entries and, with ``claims``, their claims; a
        few statements for all of them (inside an index transaction)."""
        with self._misplaced_lock:
            for letter_id in letter_ids:
                self._misplaced.pop(letter_id, None)  # gone: not to be moved back to life
        index_keys = [f"id:{letter_id}" for letter_id in letter_ids]
        rows: dict[tuple[str, bool], list[str]] = {}
        for where in values_of(self._index, index_keys, time.time()).values():
            if isinstance(where, list) and len(where) >= 2:
                rows.setdefault((str(where[0]), len(where) > 2), []).append(str(where[1]))
        for (webhook, held), keys in rows.items():
            delete_many(self._cache(webhook, held), keys)
        if claims:
            index_keys += [f"claim:{letter_id}" for letter_id in letter_ids]
        delete_many(self._index, index_keys)

    def _row(self, cache: diskcache.Cache, key: str) -> dict[str, Any] | None:
        try:
            data: Any = cache.get(key)
        except (UnsafeStoreRow, json.JSONDecodeError):
            return None
        return data if isinstance(data, dict) else None

    def _load(self, cache: diskcache.Cache, key: str) -> DeadLetter | None:
        try:
            data: Any = cache.get(key)
        except (UnsafeStoreRow, json.JSONDecodeError) as exc:
            data = exc
        return self._decode(data)

    def _decode(self, data: Any) -> DeadLetter | None:
        """A letter from a stored value; None (counted as refused) for anything else."""
        self.rows_read += 1
        try:
            if isinstance(data, dict):
                return DeadLetter.from_dict(data)
        except (KeyError, ValueError, TypeError):
            pass
        self.refused_rows += 1
        return None

    def _keyed(self, webhook: str, cache: diskcache.Cache) -> Iterator[tuple[str, DeadLetter]]:
        try:
            for key in cache.iterkeys():
                letter = self._load(cache, key)
                if letter is None:
                    self._refused.add((webhook, key))
                else:
                    yield key, letter
        except UnsafeStoreRow:
            self.refused_rows += 1

    def close(self) -> None:
        """Close this thread's connections to every open cache (see History.close)."""
        self._folder.close()
        self._held.close()
        self._index.close()
