"""The journal's two costs, both on the worker's side: writing records as the worker takes
them, and taking 100,000 records of dead processes into the store at the next start.

Journals ``--records`` records (a plain ``logger.error`` record each, one webhook) in groups
of 5,000, as the worker takes them from its hand-off, into ``--processes`` journals that are
then closed unsettled: processes that died (each journal's holder released its lock file, as
the kernel does for a killed process). Then a fresh store takes them all
(:func:`recover_dead`, what a worker does when it starts), and a second look finds nothing.

    uv run python benchmarks/recovery.py [--records 100000] [--processes 4]
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from pathlib import Path

from discord_logging.capture.snapshot import snapshot
from discord_logging.delivery.journaling import RecordJournal, recover_dead
from discord_logging.delivery.notifier import Notifier
from discord_logging.stats import DeliveryStats
from discord_logging.store import Store
from discord_logging.store.journal import Journal

WEBHOOK = "https://discord.com/api/webhooks/111111111111111111/bench-TOKEN_aaaaaaaaaaaaaaaaaaaa"
GROUP = 5_000  # the most the worker takes from its hand-off in one step


def write_dead_journals(root: Path, records: int, processes: int) -> float:
    """Journal ``records`` records over ``processes`` journals, left unsettled; returns the
    seconds the worker-side writes took (encoding included)."""
    notifier = Notifier(webhooks={"general": WEBHOOK})
    formatter = logging.Formatter()
    spent = 0.0
    per_process = records // processes
    for p in range(processes):
        store = Store(root)
        journal = Journal(root / "journal", 1 << 40, DeliveryStats())
        writer = RecordJournal(journal, notifier, store)
        for start in range(0, per_process, GROUP):
            batch = [
                snapshot(
                    logging.makeLogRecord(
                        {
                            "msg": "order %s failed: card declined",
                            "args": (p * per_process + i,),
                            "levelno": logging.ERROR,
                            "levelname": "ERROR",
                            "name": "shop",
                        }
                    ),
                    "error",
                    formatter,
                )
                for i in range(start, min(start + GROUP, per_process))
            ]
            began = time.perf_counter()
            writer.take(batch)
            spent += time.perf_counter() - began
        journal.close()  # unsettled: these processes "died"
        store.close()
    return spent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--processes", type=int, default=4)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        wrote = write_dead_journals(root, args.records, args.processes)
        size = sum(p.stat().st_size for p in (root / "journal").iterdir())
        store = Store(root)
        me = Journal(root / "journal", 1 << 20, DeliveryStats())
        began = time.perf_counter()
        kept = recover_dead(root / "journal", store, me)
        took = time.perf_counter() - began
        again = recover_dead(root / "journal", store, me)
        stored = len(store.dead_letters)
        me.close()
        store.close()
    print(
        f"{args.records} records journaled by {args.processes} processes that died "
        f"({size / 1e6:.1f} MB of journal):"
    )
    print(
        f"  journaling (worker side, groups of {GROUP}): {wrote:.2f} s, "
        f"{wrote / args.records * 1e6:.1f} us per record"
    )
    print(
        f"  taken into the store at the next start: {kept} letters in {took:.2f} s "
        f"({kept / took:,.0f} per s); letters in the store: {stored}; a second look: {again}"
    )


if __name__ == "__main__":
    main()
