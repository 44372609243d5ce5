"""Smoke tests: the start-up and footprint benchmarks run small, end to end."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_benchmarks_smoke import run_small

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


@pytest.mark.slow
def test_startup_runs_small_and_prints_the_first_alert_beside_python_pass() -> None:
    """startup.py with one fresh process per figure prints emit -> Discord, start -> Discord
    and a plain ``python -c pass``, then the caller's-thread figures."""
    done = run_small(BENCHMARKS / "startup.py", "--alerts", "1", "--runs", "1")
    for label in ("emit -> Discord", "process start -> Discord", "python -c pass", "--help"):
        assert label in done.stdout, done.stdout


@pytest.mark.slow
def test_footprint_runs_small_and_prints_each_row() -> None:
    """footprint.py with one fresh process per row prints the three rows with their RSS."""
    done = run_small(BENCHMARKS / "footprint.py", "--runs", "1")
    rows = ("stdlib logging alone", "DiscordHandler", "sentry_sdk.init + logging integration")
    for row in rows:
        assert row in done.stdout, done.stdout
    assert done.stdout.count(" MB") >= 3, done.stdout
