"""History query time against store size: the latest 50 of one alert type.

Fills one store with 10,000 and another with 1,000,000 entries (nine in ten "error", one in
ten "security"), then times the queries people and scripts make (median of 20 runs each).

    uv run python benchmarks/history.py [--small 10000] [--large 1000000] [--dir PATH]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from discord_logging.notification import DeliveryStatus, Notification, NotificationResult
from discord_logging.store import Store
from discord_logging.store.history import History, entry_key, make_entry

BATCH = 20_000


def fill(history: History, count: int) -> float:
    """Write ``count`` entries in batched transactions; returns seconds taken."""
    started = time.perf_counter()
    base = time.time() - count
    caches = {kind: history._cache(kind) for kind in ("error", "security")}
    for start in range(0, count, BATCH):
        batches: dict[str, list[tuple[str, dict[str, Any]]]] = {kind: [] for kind in caches}
        for i in range(start, min(count, start + BATCH)):
            kind = "security" if i % 10 == 0 else "error"
            n = Notification(
                alert_type=kind,
                title=f"payment {i} failed",
                message=f"card declined for order {i}",
                created=base + i,
            )
            status = DeliveryStatus.DELIVERED if i % 7 else DeliveryStatus.DEAD_LETTERED
            result = NotificationResult(n.id, status, "123", str(i), attempts=1)
            batches[kind].append((entry_key(n.created, n.id), make_entry(n, result, kind, 0.0)))
        for kind, rows in batches.items():
            with caches[kind].transact():
                for key, entry in rows:
                    caches[kind].set(key, entry)
    return time.perf_counter() - started


def timed(query: Callable[[], list[dict[str, Any]]], runs: int = 20) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        found = query()
        times.append(time.perf_counter() - started)
        assert len(found) == 50, len(found)
    return statistics.median(times)


def measure(root: Path, count: int) -> dict[str, float]:
    store = Store(root)
    history = store.history
    assert history is not None
    fill_seconds = fill(history, count)
    results = {
        "fill_s": fill_seconds,
        "error_ms": timed(lambda: history.query(alert_type="error", limit=50)) * 1000,
        "error_dead_ms": timed(
            lambda: history.query(alert_type="error", status="dead_lettered", limit=50)
        )
        * 1000,
        "all_types_ms": timed(lambda: history.query(limit=50)) * 1000,
    }
    store.close()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=10_000)
    parser.add_argument("--large", type=int, default=1_000_000)
    parser.add_argument("--dir", type=Path, default=None, help="where to build the stores")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(dir=args.dir))
    try:
        small = measure(root / "small", args.small)
        large = measure(root / "large", args.large)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(f"history query, median of 20 runs (store sizes {args.small:,} and {args.large:,}):")
    for key, label in (
        ("error_ms", "latest 50 of one type (error)"),
        ("error_dead_ms", "latest 50 error, status dead_lettered"),
        ("all_types_ms", "latest 50 of all types"),
    ):
        ratio = large[key] / small[key]
        print(f"  {label:42s} {small[key]:7.2f} ms  {large[key]:7.2f} ms  ratio {ratio:.2f}")
    print(f"  (filling took {small['fill_s']:.1f} s and {large['fill_s']:.1f} s)")


if __name__ == "__main__":
    main()
