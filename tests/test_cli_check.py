"""``discord-logging check``: route table, JSON, errors, exit codes, never a token."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest
from conftest import ERRORS_WEBHOOK, WEBHOOK

from discord_logging.cli import EXIT_CONFIG, main

TOKENS = [WEBHOOK.rsplit("/", 1)[1], ERRORS_WEBHOOK.rsplit("/", 1)[1]]


def assert_no_token(text: str) -> None:
    for token in TOKENS:
        assert token not in text


def test_check_prints_route_table(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The table shows each alert type's webhook and fallbacks, tokens redacted."""
    monkeypatch.setenv("DISCORD_WEBHOOK_GENERAL", WEBHOOK)
    monkeypatch.setenv("DISCORD_WEBHOOK_ERRORS", ERRORS_WEBHOOK)
    monkeypatch.setenv("DISCORD_ROUTES", "app.audit=security")
    assert main(["check"]) == 0
    out = capsys.readouterr().out
    assert "Configuration OK" in out
    assert "critical    error (fallback)" in out
    assert "/webhooks/111111111111111111/***" in out
    assert "app.audit" in out
    assert_no_token(out)


def test_check_output_fits_in_100_columns(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every line of check's tables fits a 100-column terminal (the store's path after them
    is as long as it is): the ``silent`` mapping is shown as ``type=value`` pairs wrapped onto
    rows of its own under its name."""
    monkeypatch.setenv("DISCORD_WEBHOOK_GENERAL", WEBHOOK)
    assert main(["check"]) == 0
    out = capsys.readouterr().out
    lines = out[: out.index("\nStore: ")].splitlines()
    assert [line for line in lines if len(line) > 100] == []
    [silent] = [i for i, line in enumerate(lines) if line.startswith("silent ")]
    shown = " ".join(line.strip() for line in lines[silent : silent + 3])
    assert "general=True, monitoring=True" in shown
    assert "error=False" in shown


def test_check_json(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """--json prints the same facts for scripts."""
    monkeypatch.setenv("DISCORD_WEBHOOK_GENERAL", WEBHOOK)
    assert main(["check", "--json"]) == 0
    out = capsys.readouterr().out
    data = json.loads(out)
    assert data["ok"] is True
    assert data["webhooks"]["general"].endswith("/***")
    assert {r["alert_type"]: r["webhook"] for r in data["routes"]}["security"] == "general"
    assert_no_token(out)


def test_check_configuration_error_exit_3(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """An invalid setting exits 3 with the variable and the fix on stderr, no token."""
    monkeypatch.setenv("DISCORD_WEBHOOK_GENERAL", WEBHOOK.replace("discord.com", "evil.example"))
    assert main(["check"]) == EXIT_CONFIG
    err = capsys.readouterr().err
    assert "DISCORD_WEBHOOK_GENERAL" in err
    assert "DISCORD_ALLOWED_HOSTS" in err
    assert_no_token(err)


@pytest.mark.slow  # a real process
def test_console_script_entry_point() -> None:
    """The installed discord-logging command runs check; --help works."""
    exe = shutil.which("discord-logging", path=os.path.dirname(sys.executable))
    assert exe is not None
    env = {**os.environ, "DISCORD_WEBHOOK_GENERAL": WEBHOOK}
    done = subprocess.run([exe, "check"], capture_output=True, text=True, env=env, check=False)
    assert done.returncode == 0, done.stderr
    assert_no_token(done.stdout + done.stderr)
    helped = subprocess.run([exe, "--help"], capture_output=True, text=True, check=False)
    assert "check" in helped.stdout
    assert "Exit codes" in helped.stdout


def test_check_validates_templates_of_routed_types(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: object
) -> None:
    """A broken template reachable only through a route fails check, as the handler would."""
    from pathlib import Path

    templates = Path(str(tmp_path)) / "tpl"
    templates.mkdir()
    (templates / "billing.j2").write_text(
        '{% extends "base.j2" %}{% block title %}{{ nope }}{% endblock %}'
    )
    monkeypatch.setenv("DISCORD_WEBHOOK_GENERAL", WEBHOOK)
    monkeypatch.setenv("DISCORD_ROUTES", "shop.pay=billing")
    monkeypatch.setenv("DISCORD_TEMPLATES_DIR", str(templates))
    assert main(["check"]) == EXIT_CONFIG
    assert "billing.j2" in capsys.readouterr().err


def test_check_reports_damaged_store_files_set_aside(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Store files that were damaged and set aside are listed, for a person to look at."""
    from pathlib import Path

    monkeypatch.setenv("DISCORD_WEBHOOK_GENERAL", WEBHOOK)
    store = Path(os.environ["DISCORD_STORE_PATH"])
    (store / "history" / "general.damaged-20261201T080000Z").mkdir(parents=True)
    assert main(["check"]) == 0
    out = capsys.readouterr().out
    assert "damaged and set aside" in out
    assert "general.damaged-" in out


def test_check_validates_button_templates(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A link button whose template fails on the sample record fails check, naming
    DISCORD_BUTTONS, as the handler would at start-up."""
    monkeypatch.setenv("DISCORD_WEBHOOK_GENERAL", WEBHOOK)
    monkeypatch.setenv(
        "DISCORD_BUTTONS",
        '{"error": [{"label": "Runbook", "url": "https://r.example/{{ nope }}"}]}',
    )
    assert main(["check"]) == EXIT_CONFIG
    assert "DISCORD_BUTTONS: error" in capsys.readouterr().err
