"""Smoke test: benchmarks/fleet.py runs a one-process row end to end and reports it as JSON."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

FLEET = Path(__file__).resolve().parent.parent / "benchmarks" / "fleet.py"


def test_fleet_quick_one_process_row_reports_every_record() -> None:
    """`fleet.py --quick --json` for the forked one-process row delivers and counts every record."""
    command = [sys.executable, str(FLEET), "--quick", "--rows", "fork-1-store"]
    done = subprocess.run(
        [*command, "--records", "5", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    (row,) = json.loads(done.stdout)
    assert row["row"] == "fork-1-store"
    assert row["expected"] == 5
    assert row["delivered"] == 5
    assert row["lost"] == 0
    assert row["duplicates"] == 0
    assert row["429s"] == 0
