"""Smoke tests: the fleet, store_stall, capture and emit benchmarks run small, end to end."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

# Real servers and processes (web servers, Celery, the examples).
pytestmark = pytest.mark.slow

FLEET = Path(__file__).resolve().parent.parent / "benchmarks" / "fleet.py"


def run_small(script: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run a benchmark script with ``args``; it must end normally."""
    done = subprocess.run(
        [sys.executable, str(script), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done


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


STALL = FLEET.parent / "store_stall.py"


def test_store_stall_counts_only_stalls_that_overlap_store_code() -> None:
    """The stall attribution: a stall counts as the store's when some stretch of store code
    (on any thread) overlaps it, and not otherwise."""
    sys.path.insert(0, str(STALL.parent))
    try:
        import store_stall  # a script, imported from its folder
    finally:
        sys.path.remove(str(STALL.parent))
    activity = store_stall.StoreActivity()
    for span in [(1.0, 2.0), (1.5, 3.0), (10.0, 10.5)]:
        activity.add(*span)
    stalls = [(0.0, 0.9), (2.9, 4.0), (5.0, 6.0), (9.0, 10.0), (10.4, 11.0), (12.0, 13.0)]
    assert store_stall.overlapping(stalls, activity) == pytest.approx([1.1, 0.6])


def test_store_stall_runs_small_and_prints_its_verdict() -> None:
    """A small run of store_stall.py ends normally and prints both figures and a verdict."""
    done = run_small(STALL, "--letters", "400", "--seconds", "0.3")
    assert done.stdout.count("longest while store code ran") == 2
    assert "longest stall while store code ran under 20 ms:" in done.stdout


CAPTURE = FLEET.parent / "capture.py"
EMIT = FLEET.parent / "emit.py"


def test_capture_runs_small_and_times_every_kind_of_record() -> None:
    """A small run of capture.py prints a figure for each kind of record it times."""
    done = run_small(CAPTURE, "--calls", "200", "--repeat", "1")
    for kind in ("plain", "formatter", "structlog event dict", "loguru record", "in a span"):
        assert kind in done.stdout
    assert "ignores a formatter" not in done.stdout  # this checkout reads it


def test_emit_runs_small_with_a_formatter_in_a_span() -> None:
    """emit.py --formatter --span runs both handlers and prints their ratio."""
    done = run_small(EMIT, "--calls", "50", "--rounds", "1", "--formatter", "--span")
    assert "(formatter, in a span)" in done.stdout
    assert "ratio:" in done.stdout


STORM = FLEET.parent / "storm.py"


def test_storm_benchmark_runs_small_and_reports_both_ways() -> None:
    """A small storm.py run reports both ways side by side: one message kept current by edits
    (it ends showing the whole count) against a first message and summaries, and the fleet
    row (4 processes, one message showing the fleet's count); no 429, nothing lost."""
    done = subprocess.run(
        [
            sys.executable,
            str(STORM),
            "--repeats",
            "60",
            "--minutes",
            "0.5",
            "--speed",
            "60",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    edit, message, fleet = json.loads(done.stdout)
    assert (edit["updates"], message["updates"]) == ("edit", "message")
    assert fleet["processes"] == 4
    assert fleet["messages"] == 1
    assert edit["messages"] == 1
    assert edit["edits"] >= 1
    assert message["edits"] == 0
    assert message["messages"] >= 2
    for row in (edit, message, fleet):
        assert (row["429s"], row["lost"], row["emitted"]) == (0, 0, 60)
    for row in (edit, fleet):
        (seen,) = row["reader_sees"]
        assert seen["title"].endswith("(x 60)")
        assert seen["edits"] == row["edits"]
    assert "(x " in message["reader_sees"][-1]["title"]
