"""Start-up cost: what a fresh process pays before the first record.

Each figure is the median of several fresh interpreters (subprocesses), so nothing is warm:
- ``import discord_logging`` (the package; public names load on first use),
- ``from discord_logging import DiscordHandler`` then the first ``DiscordHandler(...)``
  (import and construction timed apart, inside the child),
- ``discord-logging --help`` (wall time of the installed console script), and the same under
  ``uv run --no-sync`` when uv is on the PATH.

Targets: ``--help`` under 0.3 s, construction under 0.1 s.

    uv run python benchmarks/startup.py [--runs 7]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

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
handler = DiscordHandler(webhooks={"general": sys.argv[1]}, store_path=sys.argv[2])
built = time.perf_counter() - started
handler.close()
heavy = sorted(m for m in ("jinja2", "httpx", "diskcache", "pydantic", "pydantic_settings")
               if m in sys.modules)
print(json.dumps({"package": package, "import": imported, "construct": built, "loaded": heavy}))
"""


def wall(argv: list[str]) -> float:
    """Seconds one run of ``argv`` takes, start to exit."""
    started = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7, help="fresh processes per figure")
    args = parser.parse_args()

    children = []
    with tempfile.TemporaryDirectory() as scratch:
        for i in range(args.runs):
            done = subprocess.run(
                [sys.executable, "-c", CHILD, WEBHOOK, os.path.join(scratch, f"store{i}")],
                check=True,
                capture_output=True,
                text=True,
            )
            children.append(json.loads(done.stdout))
    script = shutil.which("discord-logging", path=os.path.dirname(sys.executable))
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

    print(f"median of {args.runs} fresh processes, Python {sys.version.split()[0]}")
    print(f"import discord_logging                 {median_ms([c['package'] for c in children])}")
    print(
        f"from discord_logging import DiscordHandler {median_ms([c['import'] for c in children])}"
    )
    print(
        f"first DiscordHandler(...)              {median_ms([c['construct'] for c in children])}"
        "   (target < 100 ms)"
    )
    print(f"discord-logging --help (wall)          {median_ms(helps)}   (target < 300 ms)")
    if uv_helps:
        print(f"uv run --no-sync discord-logging --help {median_ms(uv_helps)}")
    print(f"heavy modules loaded by construction: {', '.join(children[-1]['loaded']) or 'none'}")


if __name__ == "__main__":
    main()
