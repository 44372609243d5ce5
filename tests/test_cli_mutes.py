"""``discord-logging mute``, ``unmute`` and ``mutes`` in-process, and the active mutes that
``check`` and ``stats`` show (the shared table in the store directory conftest sets)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import WEBHOOK

from discord_logging.cli import main
from discord_logging.muting.table import FILE_NAME


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_mute_list_and_unmute(capsys: pytest.CaptureFixture[str]) -> None:
    """A mute is listed (table and JSON) until unmute ends it; unmuting nothing exits 1."""
    code, out, _ = run(capsys, "mute", "errors", "--for", "2h", "--reason", "db migration")
    assert code == 0
    assert "Muted error, below CRITICAL until" in out
    assert "CRITICAL records still pass" in out
    code, out, _ = run(capsys, "mutes")
    assert code == 0
    assert "db migration" in out
    assert "2h00m" in out or "1h59m" in out
    code, out, _ = run(capsys, "mutes", "--json")
    (listed,) = json.loads(out)
    assert (listed["scope"], listed["all_levels"], listed["reason"]) == (
        "error",
        False,
        "db migration",
    )
    code, out, _ = run(capsys, "unmute", listed["id"][:5])
    assert code == 0
    assert f"Ended: {listed['id']} (error)." in out
    code, out, err = run(capsys, "unmute", "error")
    assert code == 1
    assert "no active mute matches 'error'" in err
    assert json.loads(run(capsys, "mutes", "--json")[1]) == []


def test_mute_refuses_a_bad_duration_or_type(capsys: pytest.CaptureFixture[str]) -> None:
    """A bad duration or alert type is a usage error saying what is allowed; nothing is set."""
    code, _, err = run(capsys, "mute", "general", "--for", "2 hours")
    assert code == 2
    assert "'2 hours' is not a duration" in err
    code, _, err = run(capsys, "mute", "no such!", "--for", "1h")
    assert code == 2
    assert "is not a valid name" in err
    code, _, err = run(capsys, "mute", "genral", "--for", "1h")  # a typo would mute nothing
    assert code == 2
    assert "'genral' is not an alert type here (did you mean general?)" in err
    assert json.loads(run(capsys, "mutes", "--json")[1]) == []


def test_mute_knows_the_types_routes_lead_to(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A type only DISCORD_ROUTES leads to is known to the CLI as to ``handler.mute``: its
    near miss is refused as a typo, the type itself is muted."""
    monkeypatch.setenv("DISCORD_ROUTES", "shop.payments=payments")
    code, _, err = run(capsys, "mute", "paymnets", "--for", "1h")
    assert code == 2
    assert "'paymnets' is not an alert type here (did you mean payments?)" in err
    code, out, _ = run(capsys, "mute", "payments", "--for", "1h")
    assert code == 0, out
    assert [m["scope"] for m in json.loads(run(capsys, "mutes", "--json")[1])] == ["payments"]


def test_check_and_stats_show_the_active_mutes(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """check (text and JSON) and stats (text and JSON) list a mute that holds now."""
    monkeypatch.setenv("DISCORD_WEBHOOK_GENERAL", WEBHOOK)
    assert run(capsys, "mute", "all", "--for", "30m", "--all-levels", "--match", "timeout")[0] == 0
    code, out, _ = run(capsys, "check")
    assert code == 0
    assert "Muted: all until" in out
    code, out, _ = run(capsys, "check", "--json")
    assert [m["match"] for m in json.loads(out)["mutes"]] == ["timeout"]
    code, out, _ = run(capsys, "stats")
    assert "Muted now: all until" in out
    code, out, _ = run(capsys, "stats", "--json")
    assert [m["all_levels"] for m in json.loads(out)["mutes"]] == [True]


def test_check_creates_no_mute_table(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Reading the mutes for check never creates the shared table."""
    monkeypatch.setenv("DISCORD_WEBHOOK_GENERAL", WEBHOOK)
    code, out, _ = run(capsys, "check", "--json")
    assert code == 0
    assert json.loads(out)["mutes"] == []
    assert not (tmp_path / "store" / FILE_NAME).exists()
