"""Footprint: what a process holds after its first alert, beside stdlib logging and Sentry.

Each row is the median of ``--runs`` fresh processes (5), measured at rest 3 s after the
first alert was delivered (issue 27, point 6):
- stdlib logging alone: ``basicConfig`` to a stream, one ``critical`` logged;
- DiscordHandler: the documented ``dictConfig``, one ``critical``, delivered to FakeDiscord in
  this process on loopback (see _first_alert.py);
- ``sentry_sdk.init`` with its logging integration (the ``benchmarks`` dependency group), one
  ``critical`` captured as an event and flushed; its DSN is a loopback port nobody listens
  on, so the event is refused at once and nothing leaves the machine. Its auto-enabling
  integrations are off: in this venv they would import Django, Flask, Celery and the rest
  (+89 MB measured). Even so, sentry_sdk 2.x imports what it finds installed here (httpcore
  for its HTTP/2 transport, parts of Django): about +35 MB here, +18 MB in a clean venv with
  only sentry-sdk.

Printed per row: resident memory (VmRSS) and what it adds to stdlib logging alone, and the
threads besides the main one at rest (Python's by name, and the kernel's count). Targets for
DiscordHandler: at most 30 MB more than stdlib logging alone, at most 2 library threads.

    uv run python benchmarks/footprint.py [--runs 5] [--python PATH]

``--python`` measures another interpreter, e.g. a venv built as a production image is, with
only the runtime dependencies (and sentry-sdk for its row) and bytecode compiled::

    uv venv /tmp/fp && uv pip install --python /tmp/fp/bin/python --compile-bytecode . sentry-sdk
    uv run python benchmarks/footprint.py --python /tmp/fp/bin/python

The first line printed says which interpreter ran and whether its packages' bytecode was
compiled: without it every import compiles sources, which leaves about 6 MB of freed but
fragmented native memory in the threads that imported (see benchmarks/README.md).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable
from typing import Any

from _child import run_child
from _first_alert import REPORT, environment, first_alert

from discord_logging.testing import FakeDiscord

STDLIB = (
    """
import logging, os
logging.basicConfig(stream=open(os.devnull, "w"), level=logging.INFO)
logging.getLogger("app").critical("first alert of a fresh process")
"""
    + REPORT
)

SENTRY = (
    """
import logging, socket, sys
import sentry_sdk
from sentry_sdk.integrations.logging import LoggingIntegration

with socket.socket() as sock:  # a loopback port, closed again: nobody listens there
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
sentry_sdk.init(
    dsn=f"http://public@127.0.0.1:{port}/1",
    integrations=[LoggingIntegration(level=logging.INFO, event_level=logging.ERROR)],
    auto_enabling_integrations=False,  # as in a venv without Django, Flask, Celery, ...
)
logging.getLogger("app").critical("first alert of a fresh process")
sentry_sdk.flush(timeout=2)
"""
    + REPORT
)


def alone(code: str, python: str) -> dict[str, Any]:
    """The report of ``code`` run in a fresh ``python``."""
    report, _ = run_child([python, "-c", code], timeout=60)
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="fresh processes per row")
    parser.add_argument("--python", default=sys.executable, help="the interpreter to measure")
    args = parser.parse_args()
    python = args.python
    has_sentry = subprocess.run(
        [python, "-c", "import sentry_sdk"], check=False, capture_output=True
    )

    rows: dict[str, list[dict[str, Any]]] = {}
    with FakeDiscord() as fake, tempfile.TemporaryDirectory() as scratch:
        measures: dict[str, Callable[[int], dict[str, Any]]] = {
            "stdlib logging alone": lambda _: alone(STDLIB, python),
            "DiscordHandler": lambda i: (
                first_alert(fake, os.path.join(scratch, f"store{i}"), REPORT, python).report
            ),
        }
        if has_sentry.returncode == 0:
            measures["sentry_sdk.init + logging integration"] = lambda _: alone(SENTRY, python)
        for i in range(args.runs):  # interleaved: a busy moment weighs on every row
            for label, measure in measures.items():
                rows.setdefault(label, []).append(measure(i))

    base = statistics.median(r["rss_mb"] for r in rows["stdlib logging alone"])
    print(environment(python))
    print(f"median of {args.runs} fresh processes, at rest after the first alert")
    if has_sentry.returncode != 0:
        print("(sentry-sdk is not installed in this interpreter: its row is left out)")
    print(f"{'':<40}{'RSS':>9}{'added':>10}   threads besides main (kernel's count)")
    for label, reports in rows.items():
        rss = statistics.median(r["rss_mb"] for r in reports)
        added = "" if label.startswith("stdlib") else f"{rss - base:+9.1f}"
        os_threads = statistics.median(r["os_threads"] for r in reports)
        names = ", ".join(reports[-1]["threads"]) or "none"
        target = "   (target: added <= 30 MB, <= 2 threads)" if label == "DiscordHandler" else ""
        print(f"{label:<40}{rss:7.1f} MB{added:>10}   {names} ({os_threads:g}){target}")


if __name__ == "__main__":
    main()
