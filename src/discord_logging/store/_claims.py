"""Who holds a stored letter: the store's claims, the one claim system (docs/architecture.md,
"A letter's life", rules 1 and 3). A claim's row is ``[<holder identity>, <lease end>]``,
written in the index in the transaction that checks the letter still exists, and kept past its
lease: a letter whose holder is gone or outlived its lease is taken over as uncertain. Whether
a holder is alive is the holders' one rule (:mod:`._holders`)."""

from __future__ import annotations

import dataclasses
import enum
import time
from collections.abc import Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Final

import diskcache

from ..deadletters import DeadLetter, DeadLetterReason
from ._disk import put_many, values_of
from ._holders import Holder, Identity, Liveness

# How long a claim's row outlives its lease: a letter whose holder died is taken over as
# uncertain however much later the next claimer comes (docs/architecture.md, rule 3). The row
# goes with its letter, or when the holder gives the claim back; this bounds what is left.
CLAIM_MEMORY: Final = 30 * 86400.0
CLAIM_LEASE: Final = 120.0  # seconds a redelivery claim holds before another holder may try


def claim_row(holder: str, now: float, lease: float) -> list[object]:
    """The row of a claim ``holder`` (an identity) takes (or renews) at ``now`` for ``lease``
    seconds."""
    return [holder, now + lease]


def holds(row: object, now: float, liveness: Liveness) -> bool:
    """Whether a claim's row still keeps the letter from others: within its lease, and its
    holder alive (its lock held) or of another kernel (only the lease tells). Rows of
    earlier versions (``<host>:<pid>``) hold until their lease ends; rows without a lease
    (older still) hold no more."""
    if not (isinstance(row, list) and len(row) == 2):
        return False
    holder, until = row
    if not isinstance(until, (int, float)) or now >= until or not isinstance(holder, str):
        return False
    identity = Identity.parse(holder)
    return identity is not None and liveness.alive(identity) is not False


def taken_over(row: object, now: float, liveness: Liveness) -> bool:
    """Whether a claim's row names a holder that no longer keeps the letter (gone, or past
    its lease): it may have had the letter in flight, so the next claimer takes it as
    uncertain."""
    return row is not None and not holds(row, now, liveness)


class Claim(enum.Enum):
    """How :meth:`LetterClaims.claim` took a letter."""

    FREE = "free"
    TAKEN_OVER = "taken_over"  # from a holder that is gone or outlived its lease: uncertain


def as_taken_over(letter: DeadLetter) -> DeadLetter:
    """``letter`` as it goes when taken over from a holder that may have had it in flight."""
    return dataclasses.replace(letter, reason=DeadLetterReason.UNCERTAIN)


class LetterClaims:
    """The claims half of :class:`~.durable_letters.DurableDeadLetters`: this store's holder
    (its lock file, taken at the first claim) and its claims in the index."""

    _index: diskcache.Cache
    _store_root: Path
    _holder: Holder | None = None

    if TYPE_CHECKING:

        def _transaction(self, bulk: bool = False) -> AbstractContextManager[None]: ...

    @property
    def holder(self) -> str:
        """This store's holder identity in claims (its lock taken now if not yet)."""
        if self._holder is None or not self._holder.held:
            self._holder = Holder(self._store_root)
        return self._holder.identity

    def liveness(self) -> Liveness:
        """A fresh probe of holders' locks (one per transaction)."""
        return Liveness(self._store_root)

    def release_holder(self) -> None:
        """This holder is done (the store closed): its lock goes; claims left are taken over."""
        if self._holder is not None:
            self._holder.release()

    def claim(self, letter_id: str, lease: float = CLAIM_LEASE) -> Claim | None:
        """Take the right to redeliver ``letter_id`` for ``lease`` seconds: in one transaction,
        the letter must still be kept and no live holder may hold it (rule 1); None when it
        is not. A claim whose holder is gone or outlived its lease is taken over:
        :attr:`Claim.TAKEN_OVER`, and the letter goes as uncertain (rule 3)."""
        key = f"claim:{letter_id}"
        me = self.holder
        with self._transaction():
            if self._index.get(f"id:{letter_id}") is None:
                return None  # delivered (or purged) since the caller listed it
            now, liveness = time.time(), self.liveness()
            held = self._index.get(key)
            if holds(held, now, liveness):
                return None  # held by a live holder, this one included (it is queued)
            self._index.set(key, claim_row(me, now, lease), expire=CLAIM_MEMORY)
            return Claim.TAKEN_OVER if taken_over(held, now, liveness) else Claim.FREE

    def renew(self, letter_ids: Sequence[str], lease: float = CLAIM_LEASE) -> None:
        """Extend this holder's claims on ``letter_ids`` (see :meth:`confirm`)."""
        self.confirm(letter_ids, lease)

    def confirm(self, letter_ids: Sequence[str], lease: float = CLAIM_LEASE) -> set[str]:
        """Extend this holder's claims on ``letter_ids`` by ``lease`` seconds from now, in one
        transaction, and return the ids whose claims it lost (taken over by another holder,
        or gone with their letter): the lane drops those before its next post (fencing)."""
        keys = [f"claim:{letter_id}" for letter_id in letter_ids]
        me = self.holder
        with self._transaction():
            now = time.time()
            claims = values_of(self._index, keys, now)
            row = claim_row(me, now, lease)
            mine = {key: row for key, held in claims.items() if _names(held, me)}
            put_many(self._index, mine, CLAIM_MEMORY)
        return {key[len("claim:") :] for key in keys if key not in mine}

    def release(self, letter_id: str) -> None:
        """Give up a claim (the redelivery failed; the letter stays)."""
        self._index.delete(f"claim:{letter_id}")


def _names(row: object, holder: str) -> bool:
    return isinstance(row, list) and bool(row) and row[0] == holder
