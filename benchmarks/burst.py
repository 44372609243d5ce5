"""A burst of 100,000 records (half identical, half distinct) against FakeDiscord.

Prints peak RSS growth, the time the caller spent in ``logger.error``, and where every record
went: delivered, aggregated into storm summaries, kept as dead letters, lost (must be 0).

    uv run python benchmarks/burst.py [--records 100000]
"""

from __future__ import annotations

import argparse
import logging
import resource
import tempfile
import threading
import time
from pathlib import Path

from discord_logging import DiscordHandler
from discord_logging.testing import FakeDiscord

PAGE = 4096


def rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * PAGE


class PeakRSS:
    """Samples RSS every 5 ms on a thread; ``peak`` is the highest seen."""

    def __init__(self) -> None:
        self.peak = rss_bytes()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, rss_bytes())

    def __enter__(self) -> PeakRSS:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--drain-seconds", type=float, default=20.0)
    args = parser.parse_args()
    store = Path(tempfile.mkdtemp(prefix="burst-store-"))
    with FakeDiscord() as fake:
        handler = DiscordHandler(
            webhooks={"general": fake.add_webhook(), "error": fake.add_webhook()},
            allowed_hosts=fake.host,
            store_path=str(store),
        )
        logger = logging.getLogger("burst")
        logger.addHandler(handler)
        logger.propagate = False
        logger.error("warm-up")
        handler.flush(5)
        baseline = rss_bytes()
        slowest = 0.0
        with PeakRSS() as peak:
            started = time.perf_counter()
            for i in range(args.records):
                before = time.perf_counter()
                if i % 2:
                    logger.error("upstream timeout talking to %s", "payments")
                else:
                    logger.error(f"order {i} failed validation")  # distinct record
                slowest = max(slowest, time.perf_counter() - before)
            in_emit = time.perf_counter() - started
            handler.flush(args.drain_seconds)
            handler.close()
        stats = handler.stats()
    emitted = stats["emitted"] - 1  # without the warm-up record
    kept = stats["dead_letters_kept"]
    # Each record is delivered, folded into a storm summary, or dead-lettered (then kept, or
    # redelivered later); a record refused at the hand-off would be in "dropped".
    accounted = stats["delivered"] - 1 + stats["aggregated"] + stats["dead_lettered"]
    print(f"burst of {args.records:,} records (half identical, half distinct), 2 webhooks:")
    print(
        f"  caller time in logger.error: {in_emit:.2f} s total, "
        f"{in_emit / args.records * 1e6:.1f} us per call, slowest call {slowest * 1e3:.1f} ms"
    )
    print(f"  peak RSS growth: {(peak.peak - baseline) / 2**20:.1f} MB")
    print(
        f"  emitted {emitted:,}; delivered {stats['delivered'] - 1:,} in "
        f"{stats['messages_sent'] - 1} messages; aggregated {stats['aggregated']:,}; "
        f"dead-lettered {stats['dead_lettered']:,} (redelivered {stats['redelivered']:,}, "
        f"kept {kept:,})"
    )
    print(f"  429s received: {fake.count_status(429)}; dropped: {stats['dropped'] or 'none'}")
    print(f"  lost: {max(0, emitted - accounted) + sum(stats['dropped'].values()):,}")
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"  (ru_maxrss of the process: {peak_mb:.0f} MB)")


if __name__ == "__main__":
    main()
