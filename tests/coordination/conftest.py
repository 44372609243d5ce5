"""Helpers for the coordination tests (the ``redis_server`` fixture is in tests/conftest.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from discord_logging.coordination.ledger import Limits

WORKER = Path(__file__).with_name("slot_worker.py")

# Small limits, so a test sees every rule within a handful of requests.
SMALL = Limits(channel_limit=3, channel_window=10.0, global_limit=5, global_window=2.0)


def run_workers(
    backend: str, where: str, *, processes: int, slots: int, limit: int, window: float
) -> list[tuple[float, float]]:
    """Run ``processes`` real processes taking ``slots`` slots each from one shared backend;
    returns every slot's (taken, answered) stamps."""
    args = [str(slots), str(limit), str(window)]
    workers = [
        subprocess.Popen(
            [sys.executable, str(WORKER), backend, where, *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
        )
        for _ in range(processes)
    ]
    intervals = []
    for worker in workers:
        out, err = worker.communicate(timeout=60)
        assert worker.returncode == 0, err
        for line in out.splitlines():
            taken, answered = map(float, line.split())
            intervals.append((taken, answered))
    return intervals
