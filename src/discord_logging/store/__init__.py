"""Stage 6, the store: durable dead letters and the notification history, on diskcache (JSON
values only) in one private directory shared by every process of a user.

Runs on whichever thread calls it (the worker's store thread for reads, its own writer thread
for buffered writes, the CLI's main thread). It never raises into delivery: a failing disk
switches the dead letters to memory, counted and said once on stderr.

- ``_store``: :class:`Store`, the facade the handler and the CLI open
- ``durable_letters``: letters on disk, per webhook identity; ``_claims``: who holds one;
  ``_holders``: a holder's identity and lock file, and whether a holder is alive
- ``history``: what was sent, queryable
- ``_write_buffer``: writes waiting for the writer thread (``_writer``)
- ``_resilient``: the dead-letter sink that falls back to memory
- ``_retention``, ``_disk``: expiry, and the JSON-only SQLite files; ``_exports``: export
  files, never written through a planted link or another user's file

From ``_disk`` it offers :func:`open_cache` (open one of the store's caches, JSON only, as
another process sharing the store would), its bulk writes :func:`put_many` and
:func:`delete_many`, and :class:`UnsafeStoreRow`, what reading a refused row raises.
"""

# Loaded on first use (PEP 562): the journal (``store.journal``) and the store's paths are
# needed before diskcache is imported, on the worker thread's first milliseconds.
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._claims import CLAIM_LEASE, Claim, as_taken_over, claim_row, holds, taken_over
    from ._disk import UnsafeStoreRow, delete_many, open_cache, put_many
    from ._paths import default_store_path, limits_directory
    from ._resilient import ResilientDeadLetters
    from ._store import Store
    from ._writer import WRITE_BATCH, WRITE_DELAY
    from .durable_letters import DurableDeadLetters
    from .history import History, make_entry

_HOMES = {
    "CLAIM_LEASE": "_claims",
    "Claim": "_claims",
    "as_taken_over": "_claims",
    "claim_row": "_claims",
    "holds": "_claims",
    "taken_over": "_claims",
    "UnsafeStoreRow": "_disk",
    "delete_many": "_disk",
    "open_cache": "_disk",
    "put_many": "_disk",
    "ResilientDeadLetters": "_resilient",
    "Store": "_store",
    "default_store_path": "_paths",
    "limits_directory": "_paths",
    "WRITE_BATCH": "_writer",
    "WRITE_DELAY": "_writer",
    "DurableDeadLetters": "durable_letters",
    "History": "history",
    "make_entry": "history",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f".{home}", __name__), name)
    globals()[name] = value
    return value


__all__ = [
    "CLAIM_LEASE",
    "WRITE_BATCH",
    "WRITE_DELAY",
    "Claim",
    "DurableDeadLetters",
    "History",
    "ResilientDeadLetters",
    "Store",
    "UnsafeStoreRow",
    "as_taken_over",
    "claim_row",
    "default_store_path",
    "delete_many",
    "holds",
    "limits_directory",
    "make_entry",
    "open_cache",
    "put_many",
    "taken_over",
]
