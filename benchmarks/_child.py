"""A benchmark's measured code in a fresh process: started without the caller's ``DISCORD_*``
settings (a benchmark states its own), its report the last line of its standard output, as
JSON. A failed child ends the benchmark with the tail of what it said on stderr."""

from __future__ import annotations

import json
import os
import subprocess
from typing import Any


def clean_env(**more: str) -> dict[str, str]:
    """This process's environment without ``DISCORD_*`` settings, and ``more``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DISCORD_")}
    env.update(more)
    return env


def run_child(
    argv: list[str], env: dict[str, str] | None = None, *, timeout: float = 600
) -> tuple[dict[str, Any], subprocess.CompletedProcess[str]]:
    """Run ``argv`` to its end: its report, and the finished process (its stderr, say)."""
    done = subprocess.run(
        argv, env=env, capture_output=True, text=True, check=False, timeout=timeout
    )
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv[:2])[:80]} failed: {done.stderr[-2000:]}")
    lines = done.stdout.strip().splitlines()
    report: dict[str, Any] = json.loads(lines[-1]) if lines else {}
    return report, done
