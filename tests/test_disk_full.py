"""A full disk keeps what fits (docs/architecture.md, "A full disk"): when the store's volume
fills during an outage, what was written stays readable and is delivered by the next start,
the rest is counted and said once, the exit line gives the exact number LOST, and the store
writes again by itself once space returns."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from processkit import library_lines, next_start, run_script, script_env

from discord_logging.testing import FakeDiscord

pytestmark = pytest.mark.slow  # real processes on a real (small) volume

RECORDS = 3_000
BODY = 1_500  # bytes of message per record

FILL_SCRIPT = f"""
import json, time
handler = make_handler(close_timeout=1.0)
handler.wait_started(60)
log.addHandler(handler)
for i in range({RECORDS}):
    log.error("order %d failed: %s", i, "x" * {BODY})
deadline = time.monotonic() + 60
while handler.stats()["queue_depth"] and time.monotonic() < deadline:
    time.sleep(0.05)
handler.close()
print(json.dumps(handler.stats()))
"""


@pytest.fixture
def small_volume(tmp_path: Path) -> Iterator[Path]:
    """A 3 MB tmpfs (root only); unmounted after the test."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root (as in CI)")
    volume = tmp_path / "volume"
    volume.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(volume)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"mount refused a tmpfs: {mounted.stderr.strip()}")
    try:
        yield volume
    finally:
        subprocess.run(["umount", "-l", str(volume)], check=False)
