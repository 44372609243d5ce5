"""Redelivery that needs no traffic: a restarted application that logs nothing still
delivers, oldest first, what the last run kept."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from processkit import (
    PRELUDE,
    SCRIPT_TIMEOUT,
    library_lines,
    run_script,
    script_env,
    titles,
)
from waiting import wait_for

from discord_logging.testing import FakeDiscord

pytestmark = pytest.mark.slow  # real processes

FIRST_RUN = """
log.addHandler(make_handler())
for i in range(3):
    log.error("kept %s", i)
"""
# Creates the handler, logs nothing, and lives until the test closes its stdin.
QUIET_RUN = """
handler = make_handler()
sys.stdin.read()
"""


def test_kept_letters_are_redelivered_without_a_record(
    fake_discord: FakeDiscord, tmp_path: Path
) -> None:
    """Run 1 exits while Discord answers 503 and keeps its letters; run 2 only creates the
    handler, and the letters arrive in the order they were logged."""
    url = fake_discord.add_webhook(host="localhost")
    store = tmp_path / "store"
    fake_discord.fail_next(10_000, 503)
    first = run_script(FIRST_RUN, script_env(fake_discord, url, store, 1.0), tmp_path)
    assert first.returncode == 0, first.stderr
    assert "3 dead letters kept in the store" in " ".join(library_lines(first.stderr))
    fake_discord.reset()
    path = tmp_path / "quiet.py"
    path.write_text(PRELUDE + QUIET_RUN, encoding="utf-8")
    with subprocess.Popen(
        [sys.executable, str(path)],
        env=script_env(fake_discord, url, store),
        stdin=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as second:
        try:
            arrived = wait_for(
                lambda: len(fake_discord.messages) > 0 and len(titles(fake_discord)) >= 3
            )
        finally:
            _, err = second.communicate("", timeout=SCRIPT_TIMEOUT)
    assert arrived, err
    assert titles(fake_discord) == ["kept 0", "kept 1", "kept 2"], err
    assert second.returncode == 0, err
