"""Who holds a stored letter: the store's claims, the one claim system (docs/architecture.md,
"A letter's life", rules 1 and 3). A claim's row is ``[<host>:<pid>, <lease end>]``, written
in the index in the transaction that checks the letter still exists, and kept past its lease:
a letter whose holder died is taken over as uncertain."""

from __future__ import annotations

import os
import socket
from typing import Final

HOST: Final = socket.gethostname()


# How long a claim's row outlives its lease: a letter whose holder died is taken over as
# uncertain however much later the next claimer comes (docs/architecture.md, rule 3). The row
# goes with its letter, or when the holder gives the claim back; this bounds what is left.
CLAIM_MEMORY: Final = 30 * 86400.0


def claimant() -> str:
    """Who this process is in a claim: its host and pid (a fork is another claimant)."""
    return f"{HOST}:{os.getpid()}"


def claim_row(now: float, lease: float) -> list[object]:
    """The row of a claim this process takes (or renews) at ``now`` for ``lease`` seconds."""
    return [claimant(), now + lease]


def holds(row: object, now: float) -> bool:
    """Whether a claim's row still keeps the letter from others: within its lease, held by
    this process (it is queued here), a live process of this host, or a process of another
    host sharing the store directory (its pid cannot be checked here). Rows of stores
    written before leases were recorded hold ``<host>:<pid>`` or a bare pid, and expire
    with the row."""
    if isinstance(row, list) and len(row) == 2:
        holder, until = row
        return isinstance(until, (int, float)) and now < until and _live(holder)
    return _live(row)


def is_mine(row: object) -> bool:
    """Whether a claim's row (of any version) names this process."""
    holder = row[0] if isinstance(row, list) and row else row
    return holder in (claimant(), os.getpid())


def taken_over(row: object, now: float) -> bool:
    """Whether a claim's row names a holder that no longer keeps the letter (killed, or past
    its lease): it may have had the letter in flight, so the next claimer takes it as
    uncertain."""
    return row is not None and not holds(row, now)


def _live(holder: object) -> bool:
    if isinstance(holder, int):
        return holder == os.getpid() or _alive(holder)
    if not isinstance(holder, str):
        return False
    host, _, pid = holder.rpartition(":")
    if host != HOST:
        return True
    return pid.isdigit() and (int(pid) == os.getpid() or _alive(int(pid)))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True
