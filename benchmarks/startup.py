"""Start-up: how soon a fresh process's first alert reaches Discord, and what it pays first.

The first alert (issue 27, point 5): for each of ``--alerts`` fresh processes (5), one at a
time, the process builds the handler with ``logging.config.dictConfig`` (the documented
configuration) and logs one ``critical`` at once; FakeDiscord receives it in this process, on
loopback (see _first_alert.py). Printed: emit -> Discord (the fake's receive time) and process
start -> Discord, the median and each, beside the wall time of a plain ``python -c pass``
measured in the same run. Targets: emit -> Discord under 500 ms, start -> Discord under
700 ms (medians, idle 2-core machine).

Then what the caller's thread pays, each figure the median of ``--runs`` fresh interpreters:
- ``import discord_logging`` (the package; public names load on first use),
- ``from discord_logging import DiscordHandler`` then the first ``DiscordHandler(...)``
  (import and construction timed apart, inside the child), then ``wait_started()``,
- beside them, in the same run: ``import logging.handlers`` (what stdlib's QueueHandler costs
  to import) and ``import httpx`` (one of the imports the worker pays),
- ``discord-logging --help`` (wall time of the installed console script), and the same under
  ``uv run --no-sync`` when uv is on the PATH.

Targets: the caller's thread pays under 0.1 s for import plus construction; ``--help`` under
0.3 s.

    uv run python benchmarks/startup.py [--alerts 5] [--runs 7] [--python PATH]

``--python`` measures another interpreter (see footprint.py for a venv built as a production
image is, bytecode compiled); the first line printed says which, and whether its packages'
bytecode was compiled.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile

from _child import run_child
from _first_alert import FirstAlert, environment, first_alert, wall

from discord_logging.testing import FakeDiscord

WEBHOOK = "https://discord.com/api/webhooks/111111111111111111/benchmark-TOKEN_aaaaaaaaaaaaaa"

CHILD = """
import json, sys, time
started = time.perf_counter()
import discord_logging
package = time.perf_counter() - started
started = time.perf_counter()
from discord_logging import DiscordHandler
imported = time.perf_counter() - started
started = time.perf_counter()
heavy = sorted(m for m in ("jinja2", "httpx", "diskcache", "pydantic", "pydantic_settings")
               if m in sys.modules)
started = time.perf_counter()
handler = DiscordHandler(webhooks={"general": sys.argv[1]}, store_path=sys.argv[2])
built = time.perf_counter() - started
started = time.perf_counter()
handler.wait_started()
worker = time.perf_counter() - started
handler.close()
print(json.dumps({"package": package, "import": imported, "construct": built,
                  "worker": worker, "loaded": heavy}))
"""

# The same clock around one import, for the figures printed beside ours.
ALONE = """
import json, sys, time
started = time.perf_counter()
__import__(sys.argv[1])
print(json.dumps(time.perf_counter() - started))
"""


def first_alerts(count: int, python: str) -> tuple[list[FirstAlert], list[float]]:
    """``count`` fresh processes' first alerts, each beside a ``python -c pass`` run."""
    alerts, plain = [], []
    with FakeDiscord() as fake, tempfile.TemporaryDirectory() as scratch:
        for i in range(count):
            plain.append(wall([python, "-c", "pass"]))
            alerts.append(first_alert(fake, os.path.join(scratch, f"alert{i}"), python=python))
    return alerts, plain


def print_first_alerts(alerts: list[FirstAlert], plain: list[float]) -> None:
    def ms(value: float) -> str:
        return f"{value * 1000:,.0f} ms"

    def line(label: str, values: list[float], target: str) -> None:
        each = ", ".join(ms(v) for v in values)
        print(f"{label:<30}median {ms(statistics.median(values)):>9}   (each: {each}){target}")

    print(f"first alert of {len(alerts)} fresh processes (dictConfig, one critical, FakeDiscord)")
    line("  emit -> Discord", [a.emit_to_discord for a in alerts], "   target < 500 ms")
    line("  process start -> Discord", [a.start_to_discord for a in alerts], "   target < 700 ms")
    line("  python -c pass (wall)", plain, "")
    print()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alerts", type=int, default=5, help="fresh processes' first alerts")
    parser.add_argument("--runs", type=int, default=7, help="fresh processes per figure")
    parser.add_argument("--python", default=sys.executable, help="the interpreter to measure")
    args = parser.parse_args()
    python = args.python
    print(environment(python))
    print_first_alerts(*first_alerts(args.alerts, python))

    children = []
    alone: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as scratch:
        for i in range(args.runs):
            store = os.path.join(scratch, f"store{i}")
            children.append(run_child([python, "-c", CHILD, WEBHOOK, store])[0])
            for name in ("logging.handlers", "httpx"):
                alone.setdefault(name, []).append(run_child([python, "-c", ALONE, name])[0])
    script = shutil.which("discord-logging", path=os.path.dirname(python))
    assert script is not None, "install the project first (uv sync)"
    helps = [wall([script, "--help"]) for _ in range(args.runs)]
    uv = shutil.which("uv")
    uv_helps = (
        [wall([uv, "run", "--no-sync", "discord-logging", "--help"]) for _ in range(args.runs)]
        if uv
        else []
    )

    def median_ms(values: list[float]) -> str:
        return f"{statistics.median(values) * 1000:7.1f} ms"

    def column(key: str) -> list[float]:
        return [c[key] for c in children]

    caller = [c["import"] + c["construct"] for c in children]
    ratio = statistics.median(caller) / statistics.median(alone["httpx"])
    rows = [
        ("import discord_logging", median_ms(column("package"))),
        ("from discord_logging import DiscordHandler", median_ms(column("import"))),
        ("first DiscordHandler(...)", median_ms(column("construct"))),
        ("  caller's thread: import + construction", f"{median_ms(caller)}   (target < 100 ms)"),
        ("  then the worker's start (settings, store, client)", median_ms(column("worker"))),
        ("import logging.handlers (stdlib, same run)", median_ms(alone["logging.handlers"])),
        ("import httpx (same run)", median_ms(alone["httpx"])),
        ("caller's thread / import httpx", f"{ratio:7.2f}x"),
        ("discord-logging --help (wall)", f"{median_ms(helps)}   (target < 300 ms)"),
    ]
    if uv_helps:
        rows.append(("uv run --no-sync discord-logging --help", median_ms(uv_helps)))
    print(f"median of {args.runs} fresh processes")
    for label, figure in rows:
        print(f"{label:<52}{figure}")
    print(f"heavy modules loaded by the import: {', '.join(children[-1]['loaded']) or 'none'}")


if __name__ == "__main__":
    main()
