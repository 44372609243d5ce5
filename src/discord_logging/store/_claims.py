"""Who holds a stored letter: the store's claims, the one claim system (docs/architecture.md,
"A letter's life", rule 1). A claim is ``<host>:<pid>`` with a lease, written in the index in
the transaction that checks the letter still exists."""

from __future__ import annotations

import os
import socket
from typing import Final

HOST: Final = socket.gethostname()


def claimant() -> str:
    """Who this process is in a claim: its host and pid (a fork is another claimant)."""
    return f"{HOST}:{os.getpid()}"


def holds(holder: object) -> bool:
    """Whether a claim's holder still keeps the letter from others: this process (it is
    queued here), a live process of this host, or a process of another host sharing the
    store directory (its claim lasts until the lease ends: its pid cannot be checked here).
    Claims of stores written before host names were recorded hold a bare pid."""
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
