"""Caller-thread cost of one ``logger.error(...)`` call: DiscordHandler vs QueueHandler.

Both measured in the same run on the same machine: DiscordHandler (worker thread delivering
to FakeDiscord on loopback) and stdlib ``QueueHandler`` + ``QueueListener`` (listener feeding a
``NullHandler``). Prints the median cost per call over several rounds and the ratio.

``--formatter`` sets the same ``logging.Formatter`` on both handlers (QueueHandler formats
every record with it too); ``--span`` logs inside an active OpenTelemetry span (the SDK's
tracer), which DiscordHandler reads for the trace and span ids. The journal is on (the
default; its writes are the worker's, in a store in a temporary directory); ``--no-journal``
turns it off.

    uv run python benchmarks/emit.py [--calls 20000] [--rounds 7] [--formatter] [--span]
        [--no-journal]
"""

from __future__ import annotations

import argparse
import logging
import logging.handlers
import queue
import statistics
import tempfile
import time
from collections.abc import Callable

from _spans import active_span

from discord_logging import DiscordHandler
from discord_logging.testing import FakeDiscord


def measure(logger: logging.Logger, calls: int) -> float:
    """Seconds per call, timing the caller's thread only."""
    started = time.perf_counter()
    for i in range(calls):
        logger.error("order %s failed: card declined", i)
    return (time.perf_counter() - started) / calls


def rounds(
    setup: Callable[[], tuple[logging.Logger, Callable[[], None]]], calls: int, n: int
) -> list[float]:
    results = []
    for _ in range(n):
        logger, teardown = setup()
        measure(logger, 200)  # warm up: start the worker, fill caches
        results.append(measure(logger, calls))
        teardown()
    return results


FORMAT = "%(asctime)s %(levelname)-8s %(name)s: %(message)s"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--formatter", action="store_true", help=f"both handlers: {FORMAT!r}")
    parser.add_argument("--span", action="store_true", help="log inside an OpenTelemetry span")
    parser.add_argument("--no-journal", action="store_true", help="DISCORD_JOURNAL=false")
    args = parser.parse_args()
    formatter = logging.Formatter(FORMAT) if args.formatter else None

    with FakeDiscord() as fake, tempfile.TemporaryDirectory() as store:
        url = fake.add_webhook()
        dropped: list[int] = []

        def discord_setup() -> tuple[logging.Logger, Callable[[], None]]:
            handler = DiscordHandler(
                webhooks={"general": url},
                allowed_hosts=fake.host,
                close_timeout=1,
                store_path=store,
                journal=not args.no_journal,
                # Every call accepted: past the memory bound a record is only counted
                # (dropped.memory_full), which costs the caller less than a snapshot and
                # would flatter the figure (20,000 calls outrun a 10,000 bound).
                memory_max_records=min(1_000_000, max(10_000, 2 * args.calls)),
            )
            handler.setFormatter(formatter)
            logger = logging.getLogger("bench.discord")
            logger.handlers[:] = [handler]
            logger.propagate = False

            def teardown() -> None:
                logger.handlers.clear()
                handler.close()
                dropped.append(sum(handler.stats()["dropped"].values()))

            return logger, teardown

        def queue_setup() -> tuple[logging.Logger, Callable[[], None]]:
            q: queue.Queue[logging.LogRecord] = queue.Queue()
            listener = logging.handlers.QueueListener(q, logging.NullHandler())
            listener.start()
            logger = logging.getLogger("bench.queue")
            queue_handler = logging.handlers.QueueHandler(q)
            queue_handler.setFormatter(formatter)
            logger.handlers[:] = [queue_handler]
            logger.propagate = False

            def teardown() -> None:
                logger.handlers.clear()
                listener.stop()

            return logger, teardown

        # Interleave so that machine noise hits both alike.
        ours, stdlib = [], []
        with active_span(args.span):
            for _ in range(args.rounds):
                ours += rounds(discord_setup, args.calls, 1)
                stdlib += rounds(queue_setup, args.calls, 1)

    ours_us = statistics.median(ours) * 1e6
    stdlib_us = statistics.median(stdlib) * 1e6
    case = ", ".join(
        name
        for name, on in (
            ("formatter", args.formatter),
            ("in a span", args.span),
            ("journal off", args.no_journal),
        )
        if on
    )
    print(
        f"{args.calls} logger.error() calls x {args.rounds} rounds "
        f"({case or 'no formatter, journal on'}), "
        "median caller-thread cost:"
    )
    print(f"  DiscordHandler:             {ours_us:6.2f} us")
    print(f"  QueueHandler+QueueListener: {stdlib_us:6.2f} us")
    print(f"  ratio: {ours_us / stdlib_us:.2f} (target <= 1.0)")
    print(f"  records DiscordHandler dropped: {sum(dropped)} (measured only where it is 0)")


if __name__ == "__main__":
    main()
