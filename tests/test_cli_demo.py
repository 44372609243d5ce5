"""``discord-logging demo`` through the installed command: it cleans up after itself (or says
where it kept its store), and ``--real`` fails when nothing arrived."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from entry_point import run

from discord_logging.testing import FakeDiscord


@pytest.mark.slow  # a real process
def test_quick_demo_loses_nothing_and_leaves_no_temporary_directory(tmp_path: Path) -> None:
    """The demo's temporary store is deleted at the end and the summary says so; only when
    dead letters are still kept in it (a loaded machine: redelivery not finished) is it left,
    and then the summary names it and nothing else is left behind. It shows an incident kept
    current by edits and a forum post opened after Discord's 220001."""
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    done = run("demo", "--quick", env={"TMPDIR": str(scratch)})
    assert done.returncode == 0, done.stderr
    assert "lost                   0" in done.stdout
    summary = dict(line.rsplit(None, 1) for line in done.stdout.splitlines() if "  " in line)
    assert int(summary["edits (incidents)"]) >= 2
    assert summary["forum posts"] == "1"
    assert "a reader sees one message, edited" in done.stdout
    assert "forum post opened: 'deploy 2.4.2 failed on web-3'" in done.stdout
    left = list(scratch.iterdir())
    if "temporary directory, now deleted" in done.stdout:
        assert left == []
    else:
        assert len(left) == 1, left
        assert f"history and dead letters: {left[0]}" in done.stdout
        assert (left[0] / "deadletters").is_dir()


@pytest.mark.slow  # a real process
def test_demo_with_store_keeps_it_and_says_where(tmp_path: Path) -> None:
    """--store PATH keeps the store (before or after the command) and names it."""
    store = tmp_path / "kept"
    done = run("--store", str(store), "demo", "--quick", "--json")
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert (summary["lost"], summary["store"]) == (0, str(store))
    assert store.is_dir()
    history = run("history", "--store", str(store), "--json", "--limit", "5")
    assert len(json.loads(history.stdout)) == 5


@pytest.mark.slow  # a real process
def test_real_demo_exits_1_when_nothing_arrived(tmp_path: Path) -> None:
    """--real against a webhook that refuses everything: nothing lost (kept), but exit 1."""
    with FakeDiscord() as fake:
        url = fake.add_webhook()
        fake.set_status_override(url.split("/")[-2], 404)
        done = run(
            "demo",
            "--real",
            "--quick",
            env={"DISCORD_WEBHOOK_GENERAL": url, "DISCORD_ALLOWED_HOSTS": fake.host},
        )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "nothing arrived at Discord" in done.stderr
    assert "check --ping" in done.stderr
