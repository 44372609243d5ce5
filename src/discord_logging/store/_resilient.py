"""The store's dead-letter sink: buffered writes, bounded reads, memory while the disk fails."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import TYPE_CHECKING

from ..deadletters import DeadLetter, DeadLetterSink, StoreCalls
from ..notification import made_here, own_id_pattern

if TYPE_CHECKING:
    from . import Store


class ResilientDeadLetters(DeadLetterSink):
    """Durable while the disk works, memory after a failure, durable again once it recovers.

    ``add``, ``remove`` and ``renew`` only buffer (the store's writer commits them);
    ``retryable`` reads at most a bounded number of rows of one webhook's retryable range and
    takes its claims in one transaction; ``len`` counts without writing. ``letters`` and
    ``sync`` write what is buffered first (they serve operators and flush, not the loop)."""

    def __init__(self, store: Store) -> None:
        self._store = store

    @property
    def durable(self) -> bool:  # type: ignore[override]
        return self._store.durable is not None

    def add(self, letter: DeadLetter) -> None:
        self._store.keep(letter)

    def remove(self, letter_id: str) -> None:
        self._store.forget(letter_id)

    def renew(self, letter_ids: Sequence[str]) -> None:
        self._store.renew(list(letter_ids))

    def confirm(self, letter_ids: Sequence[str]) -> set[str]:
        return self._store.confirm(list(letter_ids))

    def sync(self) -> None:
        self._store.write_buffered()

    def store_thread(self) -> StoreCalls | None:
        store = self._store
        return store.thread if store.durable is not None else None

    def release_thread(self) -> None:
        self._store.release_thread()

    def _done(self) -> None:
        """After the store was closed, a late read must not leave a connection open."""
        if self._store.closed:
            self._store.release_thread()

    def retryable(self, webhook: str, limit: int) -> list[DeadLetter]:
        store = self._store
        found: list[DeadLetter] = []
        durable = store.durable
        if durable is not None:
            try:
                pending = store._buffer
                # Not beside an inline write (close, sync): see Store._write_lock.
                with store._write_lock:
                    found = durable.retryable(
                        webhook,
                        limit,
                        skip=pending.removing(),
                        fresh=lambda: pending.fresh(webhook),
                        on_fresh=pending.mark_claimed,
                    )
            except Exception as exc:  # noqa: BLE001
                store._failed_read(exc)
            finally:
                self._done()
            if durable.misplaced:
                store._buffered(1)  # the writer moves them out of the retryable range
        if len(found) < limit:
            found += store.memory.retryable(webhook, limit - len(found))
        return found

    def scan_cut_short(self, webhook: str) -> bool:
        durable = self._store._durable
        return durable is not None and durable.scan_cut_short(webhook)

    def letters(self) -> list[DeadLetter]:
        store = self._store
        store.write_buffered()
        found = store.memory.letters()
        durable = store.durable
        if durable is not None:
            try:
                found = durable.letters() + found
            except Exception as exc:  # noqa: BLE001
                store._failed_read(exc)
            finally:
                self._done()
        return found

    def kept_ids(self, letter_ids: Collection[str]) -> set[str]:
        store = self._store
        fates = store._buffer.fates(letter_ids)
        kept = {i for i, added in fates.items() if added} | store.memory.kept_ids(letter_ids)
        durable = store.durable
        unwritten = [i for i in letter_ids if i not in fates]
        if durable is not None and unwritten:
            try:
                kept |= durable.kept_ids(unwritten)
            except Exception as exc:  # noqa: BLE001 - unknown: still owed
                store._failed_read(exc)
                kept |= set(unwritten)
            finally:
                self._done()
        return kept

    def kept_by_this_process(self) -> int:
        """The letters this process made (since its last fork; their ids say so) that the
        store keeps on disk or in memory: not those it took from dead processes' journals, nor
        those other processes sharing the store keep. For the line at close, after the
        buffer was written."""
        store = self._store
        in_memory = sum(1 for letter in store.memory.letters() if made_here(letter.id))
        durable = store.durable
        try:
            on_disk = durable.count_ids(own_id_pattern()) if durable is not None else 0
        except Exception:  # noqa: BLE001 - a store failing now: what memory holds is all known
            on_disk = 0
        return on_disk + in_memory

    def __len__(self) -> int:
        store = self._store
        count = len(store.memory)
        durable = store.durable
        if durable is None:
            return count + store._buffer.new_letters()
        try:
            count += len(durable) + store._buffer.new_letters(durable.kept_ids)
        except Exception as exc:  # noqa: BLE001
            store._failed_read(exc)
            count += store._buffer.new_letters()
        finally:
            self._done()
        return count
