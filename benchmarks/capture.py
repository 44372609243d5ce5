"""Caller-thread cost of the capture stage alone (route + snapshot), by kind of record.

No thread, no queue, no I/O: one prebuilt record routed and snapshotted in a loop, the best
of several repeats, so the figure moves with the code rather than with the machine's load.
emit.py measures the whole ``logger.error()`` call beside stdlib's QueueHandler; this script
shows what the capture stage adds to it, per kind of record:

* plain: ``log.error("order %s failed: card declined", i)``;
* formatter: the same, with a ``logging.Formatter`` on the handler (its output is the message);
* structlog: an event dict from ``ProcessorFormatter.wrap_for_formatter``, no formatter;
* loguru: the text and ``extra`` dict loguru's ``StandardSink`` hands over;
* in a span: a plain record logged inside an active OpenTelemetry span.

To compare with an older checkout, run this file with that checkout first on the path:
``PYTHONPATH=<old checkout>/src uv run python benchmarks/capture.py`` (kinds the older code
does not read are still timed: as it handles them).

    uv run python benchmarks/capture.py [--calls 200000] [--repeat 7]
"""

from __future__ import annotations

import argparse
import inspect
import logging
import timeit
from collections.abc import Callable

from _spans import active_span

from discord_logging.capture.routing import Router
from discord_logging.capture.snapshot import snapshot

FORMAT = "%(asctime)s %(levelname)-8s %(name)s: %(message)s"
LOGURU_TEXT = "2026-12-01 22:10:51.709 | ERROR    | shop:charge:42 - order 17 failed: card declined"


def record(msg: object, args: tuple[object, ...] = (), **extra: object) -> logging.LogRecord:
    made = logging.LogRecord("shop", logging.ERROR, "/app/shop.py", 42, msg, args, None, "charge")
    made.__dict__.update(extra)
    return made


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()

    router = Router({}, ["general"])
    exceptions = logging.Formatter()
    takes_formatter = "message_formatter" in inspect.signature(snapshot).parameters

    def capture(
        rec: logging.LogRecord, formatter: logging.Formatter | None
    ) -> Callable[[], object]:
        if formatter is not None and takes_formatter:
            return lambda: snapshot(rec, router.alert_type(rec), exceptions, formatter)
        return lambda: snapshot(rec, router.alert_type(rec), exceptions)

    plain = record("order %s failed: card declined", (17,))
    kinds: list[tuple[str, Callable[[], object], bool]] = [
        ("plain", capture(plain, None), False),
        ("formatter", capture(plain, logging.Formatter(FORMAT)), False),
        (
            "structlog event dict",
            capture(record({"event": "order failed", "order": 17}), None),
            False,
        ),
        ("loguru record", capture(record(LOGURU_TEXT, extra={"order": 17}), None), False),
        ("plain, in a span", capture(plain, None), True),
    ]
    print(f"route + snapshot, best of {args.repeat} x {args.calls} calls, per record:")
    for name, call, in_span in kinds:
        with active_span(in_span):
            best = min(timeit.repeat(call, number=args.calls, repeat=args.repeat))
        print(f"  {name:<22} {best / args.calls * 1e6:6.2f} us")
    if not takes_formatter:
        print("  (this checkout ignores a formatter on the handler)")


if __name__ == "__main__":
    main()
