"""CLI manners of the tools people know (git, kubectl, httpie), through the installed command:
--version, global options on either side of the command, quiet closed pipes, short ids,
recorded statuses only, exports that say what they created, a readable flush summary."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest
from entry_point import console_script, run
from letterkit import DESTINATION

from discord_logging import __version__
from discord_logging.cli.flush import FlushOutcome, summary
from discord_logging.deadletters import DeadLetter, DeadLetterReason
from discord_logging.notification import DeliveryStatus, Notification, NotificationResult
from discord_logging.store import Store
from discord_logging.store.history import make_entry


def fill(path: Path, count: int) -> list[Notification]:
    """Record ``count`` delivered notifications and keep one dead letter per 10 of them."""
    store = Store(path)
    assert store.history is not None
    notes = [
        Notification(
            alert_type="general",
            title=f"order {i} shipped",
            message="x" * 200,
            created=time.time() - count + i,
        )
        for i in range(count)
    ]
    store.history.record_many(
        [
            make_entry(n, NotificationResult(n.id, DeliveryStatus.DELIVERED, "1"), "general", 0)
            for n in notes
        ]
    )
    for n in notes[::10]:
        store.dead_letters.add(
            DeadLetter(
                n,
                "general",
                DeadLetterReason.RETRIES_EXHAUSTED,
                3,
                "503",
                None,
                503,
                destination=DESTINATION,
            )
        )
    store.close()
    return notes


@pytest.mark.slow  # a real process
def test_version() -> None:
    """--version prints the version and exits 0."""
    done = run("--version")
    assert (done.returncode, done.stdout.strip()) == (0, f"discord-logging {__version__}")


@pytest.mark.slow  # a real process
def test_global_options_before_or_after_the_command(tmp_path: Path) -> None:
    """--store and --json work before the command name as well as after it."""
    store = tmp_path / "elsewhere"
    [first, *_] = fill(store, 3)
    for argv in (
        ["--store", str(store), "--json", "history"],
        ["history", "--store", str(store), "--json"],
        ["--json", "history", "--store", str(store)],
    ):
        done = run(*argv)
        assert done.returncode == 0, (argv, done.stderr)
        assert {e["id"] for e in json.loads(done.stdout)} >= {first.id}, argv


@pytest.mark.slow  # a real process
@pytest.mark.parametrize(
    "argv",
    [["history", "--json"], ["history", "--limit", "1500"], ["dead-letters", "list", "--json"]],
)
def test_a_closed_pipe_ends_quietly_with_status_0(argv: list[str], tmp_path: Path) -> None:
    """`discord-logging history --json | head -1`: exit 0, nothing on stderr."""
    store = tmp_path / "store"
    fill(store, 1500)  # far more output than a pipe buffers
    with subprocess.Popen(
        [console_script(), "--store", str(store), *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    ) as child:
        assert child.stdout is not None
        assert child.stderr is not None
        child.stdout.readline()
        child.stdout.close()  # what `head -1` does
        err = child.stderr.read()
        assert child.wait(timeout=60) == 0
    assert err == b""


@pytest.mark.slow  # a real process
def test_history_shows_short_ids_that_select_one_notification(tmp_path: Path) -> None:
    """The history table has an 8-character id column; that id selects the entry with --id,
    and `dead-letters show` accepts it too."""
    store = tmp_path / "store"
    notes = fill(store, 30)
    done = run("--store", str(store), "history", "--limit", "30")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].split()[0] == "id"
    shown = {line.split()[0] for line in lines[2:32]}
    assert shown == {n.id[:8] for n in notes}
    target = notes[10]
    picked = json.loads(
        run("--store", str(store), "history", "--id", target.id[:8], "--json").stdout
    )
    assert [e["id"] for e in picked] == [target.id]
    letter = run("--store", str(store), "dead-letters", "show", target.id[:8])
    assert letter.returncode == 0, letter.stderr
    assert target.id in letter.stdout


@pytest.mark.slow  # a real process
def test_history_status_offers_only_recorded_statuses() -> None:
    """retrying and rate_limited are never written to the history: not offered, refused."""
    done = run("history", "--help")
    assert "{delivered,failed,dead_lettered,muted}" in " ".join(done.stdout.split())
    for status in ("retrying", "rate_limited"):
        refused = run("history", "--status", status)
        assert refused.returncode == 2
        assert "invalid choice" in refused.stderr


@pytest.mark.slow  # a real process
@pytest.mark.parametrize(
    "argv", [["dead-letters", "export"], ["history", "--export"]], ids=["dead-letters", "history"]
)
def test_export_refuses_a_missing_directory_unless_asked(argv: list[str], tmp_path: Path) -> None:
    """A missing directory is refused (exit 1, the fix named); --parents creates it and says so."""
    store = tmp_path / "store"
    fill(store, 10)
    target = tmp_path / "a" / "b" / "out.jsonl"
    refused = run("--store", str(store), *argv, str(target))
    assert refused.returncode == 1
    assert f"the directory {tmp_path / 'a'} does not exist" in refused.stderr
    assert "--parents" in refused.stderr
    assert not (tmp_path / "a").exists()
    done = run("--store", str(store), *argv, str(target), "--parents")
    assert done.returncode == 0, done.stderr
    assert f"Created directory {tmp_path / 'a'}." in done.stdout
    assert f"Created directory {tmp_path / 'a' / 'b'}." in done.stdout
    assert target.read_text().count("\n") >= 1
    assert (tmp_path / "a").stat().st_mode & 0o777 == 0o700
    again = run("--store", str(store), *argv, str(target), "--force")
    assert again.returncode == 0
    assert "Created directory" not in again.stdout


@pytest.mark.parametrize(
    ("total", "delivered", "skipped", "expected"),
    [
        (3, 3, 0, "Delivered all 3 dead letters."),
        (1, 1, 0, "Delivered the only dead letter."),
        (3, 0, 0, "Delivered nothing: none of the 3 dead letters was sent."),
        (1, 0, 0, "Delivered nothing: the 1 dead letter was not sent."),
        (2, 0, 2, "Nothing to send: Discord already had all 2."),
        (5, 2, 1, "Delivered 2 of 5 dead letters (1 skipped: Discord already had it)."),
        (6, 2, 2, "Delivered 2 of 6 dead letters (2 skipped: Discord already had them)."),
        (
            4,
            0,
            1,
            "Delivered nothing: none of the 4 dead letters was sent (1 skipped: Discord "
            "already had it).",
        ),
    ],
)
def test_flush_summary_reads_well(total: int, delivered: int, skipped: int, expected: str) -> None:
    """The flush sentence, from a table: no "0 delivered" when nothing went out."""
    assert summary(FlushOutcome(total=total, delivered=delivered, skipped=skipped)) == expected
