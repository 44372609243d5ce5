"""The longest event-loop stall the store causes with 100,000 dead letters kept.

Fills a store with 100,000 dead letters over four webhooks (each webhook's oldest 40% wait
for an operator, as after a deleted webhook; the rest are a mix, one in four operator-only),
then runs an asyncio loop doing on it what lanes do, while a monitor task sleeps 1 ms at a
time and records how late it wakes:

- ``retryable(webhook, 50)`` (which claims what it returns) on every webhook in turn;
- half of what it returned is delivered: ``remove`` and a history record for each, the
  other half stays claimed, as letters queued behind a ban pause do;
- a burst of 200 new dead letters every round, and ``len()`` of the sink.

Prints the monitor's longest stall and 99th percentile, and the longest single store call.
On a busy machine the figures include time the loop's thread waited for a CPU or for the
GIL (the writer thread shares it); the load average is printed alongside.

    uv run python benchmarks/store_stall.py [--letters 100000] [--seconds 10] [--dir PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import Executor
from pathlib import Path
from typing import Any

from discord_logging.deadletters import DeadLetter, DeadLetterReason
from discord_logging.lifecycle import store_thread
from discord_logging.notification import DeliveryStatus, Notification, NotificationResult
from discord_logging.store import Store

WEBHOOKS = ("general", "error", "security", "monitoring")
TARGET = 0.020  # seconds: the longest stall allowed
NEW_PER_ROUND = 200  # dead letters added each round
MAX_ROUNDS = 400  # far more than 10 s hold: the letters are built before the run


def make_letter(i: int, webhook: str, held: bool, dead_at: float) -> DeadLetter:
    n = Notification(
        alert_type=webhook,
        title=f"payment {i} failed",
        message=f"card declined for order {i}",
        created=dead_at,
    )
    reason = DeadLetterReason.WEBHOOK_DISABLED if held else DeadLetterReason.RETRIES_EXHAUSTED
    return DeadLetter(n, webhook, reason, attempts=3, error="503", dead_at=dead_at)


def fill(store: Store, count: int) -> float:
    """Write ``count`` letters directly (batched); returns seconds taken."""
    durable = store.durable
    assert durable is not None, "the store cannot be opened"
    started = time.perf_counter()
    base = time.time() - 86_400
    per_hook = count // len(WEBHOOKS)
    batch: list[DeadLetter] = []
    for i in range(count):
        webhook = WEBHOOKS[i % len(WEBHOOKS)]
        rank = i // len(WEBHOOKS)
        held = rank < per_hook * 0.4 or rank % 4 == 0
        batch.append(make_letter(i, webhook, held, base + i * 0.01))
        if len(batch) == 5000:
            durable.add_many(batch)
            batch = []
    durable.add_many(batch)
    store.release_thread()
    return time.perf_counter() - started


async def monitor(lags: list[float], running: asyncio.Event) -> None:
    while not running.is_set():
        started = time.perf_counter()
        await asyncio.sleep(0.001)
        lags.append(time.perf_counter() - started - 0.001)


async def lanes(
    store: Store, seconds: float, calls: dict[str, list[float]], io: Executor | None
) -> int:
    """What lanes do on the loop. With ``io`` (as the notifier does), the reads run on the
    store's own thread; without it, inline on the loop (as before)."""
    sink = store.dead_letters
    loop = asyncio.get_running_loop()

    async def read(fn: Callable[..., Any], *args: Any) -> Any:
        return fn(*args) if io is None else await loop.run_in_executor(io, fn, *args)

    # The new letters of every round are built beforehand: building them is the
    # application's work, not the store's, and would show up in the monitor as stalls.
    now = time.time()
    fresh = [
        make_letter(i, WEBHOOKS[i % 4], i % 3 == 0, now + i * 1e-4)
        for i in range(10_000_000, 10_000_000 + NEW_PER_ROUND * MAX_ROUNDS)
    ]
    gc.freeze()  # and the collector need not walk them again and again during the run
    end = time.monotonic() + seconds
    rounds = 0

    def timed(name: str, started: float) -> None:
        calls.setdefault(name, []).append(time.perf_counter() - started)

    while time.monotonic() < end and rounds < MAX_ROUNDS:
        for webhook in WEBHOOKS:
            t = time.perf_counter()
            found = await read(sink.retryable, webhook, 50)
            timed("retryable", t)
            await asyncio.sleep(0)
            for letter in found[: len(found) // 2]:
                t = time.perf_counter()
                sink.remove(letter.id)
                timed("remove", t)
                n = letter.notification
                result = NotificationResult(n.id, DeliveryStatus.DELIVERED, "1", "42", attempts=1)
                t = time.perf_counter()
                store.record(n, result, webhook)
                timed("record", t)
            await asyncio.sleep(0.005)
        for letter in fresh[rounds * NEW_PER_ROUND : (rounds + 1) * NEW_PER_ROUND]:
            t = time.perf_counter()
            sink.add(letter)
            timed("add", t)
        t = time.perf_counter()
        await read(len, sink)  # what stats() asks from a caller's thread
        timed("len", t)
        rounds += 1
        await asyncio.sleep(0.01)
    return rounds


async def run(
    store: Store, seconds: float, off_loop: bool
) -> tuple[list[float], dict[str, list[float]], int]:
    lags: list[float] = []
    calls: dict[str, list[float]] = {}
    done = asyncio.Event()
    io = store_thread() if off_loop else None
    watcher = asyncio.create_task(monitor(lags, done))
    rounds = await lanes(store, seconds, calls, io)
    done.set()
    await watcher
    if io is not None:
        await asyncio.get_running_loop().run_in_executor(io, store.release_thread)
        io.shutdown()
    return lags, calls, rounds


def p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100)[98] if len(values) > 1 else max(values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--letters", type=int, default=100_000)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--dir", type=Path, default=None, help="where to build the store")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="store-stall-", dir=args.dir))
    try:
        store = Store(root / "store")
        took = fill(store, args.letters)
        print(f"filled {args.letters:,} dead letters in {took:.1f} s")
        worst: dict[str, float] = {}
        for label, off_loop in (
            ("reads inline on the loop", False),
            ("reads on the store's thread (as shipped)", True),
        ):
            lags, calls, rounds = asyncio.run(run(store, args.seconds, off_loop))
            worst[label] = max(lags)
            load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
            print(f"\n== {label}")
            print(
                f"{rounds} rounds in {args.seconds:.0f} s, {len(lags):,} monitor wake-ups, "
                f"load average {load:.1f} on {os.cpu_count()} CPUs"
            )
            print(
                f"event-loop stall: longest {max(lags) * 1000:.1f} ms, "
                f"p99 {p99(lags) * 1000:.2f} ms"
            )
            for name, times in sorted(calls.items()):
                print(
                    f"  {name:<9} {len(times):>7,} calls  longest {max(times) * 1000:7.2f} ms  "
                    f"p99 {p99(times) * 1000:6.3f} ms"
                )
        store.close()
        inline, shipped = worst.values()
        verdict = "met" if shipped < TARGET else "MISSED"
        print(f"\nlongest stall, inline / store thread: {inline / shipped:.1f}x")
        print(f"target (as shipped): longest stall under {TARGET * 1000:.0f} ms: {verdict}")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
