"""Messages in the library's voice: one line for a misconfigured demo, a failing template said
once with its file and line, plurals right, bidirectional controls neutralised, and the
library's own HTTP request lines kept out of the application's logs unless asked for."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from conftest import attach
from entry_point import run
from waiting import FAILSAFE

from discord_logging import DiscordHandler
from discord_logging.deadletters import DeadLetter, DeadLetterReason
from discord_logging.notification import DeliveryStatus, Notification, NotificationResult
from discord_logging.store import Store
from discord_logging.testing import FakeDiscord
from discord_logging.wording import counted, plural

BIDI = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c"


@pytest.fixture
def fake() -> Iterator[FakeDiscord]:
    """A FakeDiscord with Discord's limits."""
    with FakeDiscord() as server:
        yield server


# -- demo --real -------------------------------------------------------------------------------


@pytest.mark.slow  # a real process
def test_real_demo_without_a_webhook_says_one_line_and_exits_3() -> None:
    """demo --real with no webhook configured: one line on stderr naming the fix, exit 3,
    no traceback (dictConfig's wrapping is unwrapped)."""
    done = run("demo", "--real")
    assert done.returncode == 3, done.stdout
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("discord-logging: no Discord webhook is configured: set ")
    assert "Traceback" not in done.stderr
    assert "Unable to configure handler" not in done.stderr


# -- templates ---------------------------------------------------------------------------------


def test_failing_template_is_reported_once_and_the_fallback_keeps_the_extras(
    fake: FakeDiscord, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A template that passes the start-up sample but fails on real records: every record
    is delivered with the plain embed, its extra= fields kept; stderr names the template's
    file and line once; the counter counts each failure."""
    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "billing.j2").write_text(
        '{% extends "base.j2" %}\n'
        "{% block title %}\n"
        '{{ title }} ({{ 100 // (extra.get("divisor", "1") | int) }}%)\n'
        "{% endblock %}\n"
    )
    handler = DiscordHandler(
        webhooks={"general": fake.add_webhook()},
        allowed_hosts=fake.host,
        templates_dir=templates,
        routes={"shop.billing": "billing"},
        aggregate_window=0,
    )
    log = attach(handler, "shop.billing")
    log.error("invoice failed", extra={"divisor": "0", "order_id": "A-17"})
    log.error("refund failed", extra={"divisor": "0", "order_id": "B-42"})
    assert handler.flush(FAILSAFE)
    stats = handler.stats()
    handler.close()
    err = capsys.readouterr().err
    said = [line for line in err.splitlines() if "billing.j2" in line]
    assert len(said) == 1, err
    assert f"template {templates / 'billing.j2'}, line 3 failed on a 'billing' record" in said[0]
    assert "ZeroDivisionError" in said[0]
    assert stats["template_errors"] == 2
    embeds = [embed for message in fake.messages for embed in message.embeds]
    assert [e["title"] for e in embeds] == ["invoice failed", "refund failed"]
    fields = [{f["name"]: f["value"] for f in e["fields"]} for e in embeds]
    assert [f.get("order_id") for f in fields] == ["A-17", "B-42"]
    assert all(f.get("Logger") == "shop.billing" for f in fields)


# -- plurals -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("count", "noun", "many", "expected"),
    [
        (0, "dead letter", None, "0 dead letters"),
        (1, "dead letter", None, "1 dead letter"),
        (2, "dead letter", None, "2 dead letters"),
        (1, "entry", "entries", "1 entry"),
        (3, "entry", "entries", "3 entries"),
    ],
)
def test_counted(count: int, noun: str, many: str | None, expected: str) -> None:
    """The noun is singular for exactly one, plural otherwise (zero included)."""
    assert counted(count, noun, many) == expected
    assert plural(count, noun, many) == expected.split(" ", 1)[1]


def _one_of_each(store_path: Path) -> None:
    """A store holding one history entry and one dead letter."""
    now = time.time()
    kept = Notification(
        alert_type="general", title="kept once", message="kept once", created=now, host="h"
    )
    store = Store(store_path)
    assert store.history is not None
    store.history.record(kept, NotificationResult(kept.id, DeliveryStatus.DEAD_LETTERED), "general")
    store.dead_letters.add(
        DeadLetter(
            notification=kept,
            webhook="general",
            reason=DeadLetterReason.RETRIES_EXHAUSTED,
            attempts=3,
            error="503",
            http_status=503,
            dead_at=now,
        )
    )
    store.close()


@pytest.mark.slow  # a real process
def test_cli_counts_one_thing_in_the_singular(
    fake: FakeDiscord, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One history entry, one dead letter: every command says so in the singular."""
    store = tmp_path / "one"
    _one_of_each(store)
    at = ("--store", str(store))
    assert "1 entry, newest first." in run("history", *at).stdout
    assert "1 dead letter, oldest first." in run("dead-letters", "list", *at).stdout
    assert "Exported 1 dead letter to stdout." in run("dead-letters", "export", "-", *at).stderr
    assert "Exported 1 history entry to " in run("history", "--export", "h.jsonl", *at).stdout
    broken = fake.add_webhook()
    fake.set_status_override(broken.split("/")[-2], 404)
    env = {"DISCORD_WEBHOOK_GENERAL": broken, "DISCORD_ALLOWED_HOSTS": fake.host}
    flushed = run("flush", *at, env=env)
    assert "Delivered nothing: the 1 dead letter was not sent." in flushed.stdout
    assert "1 dead letter remains:" in flushed.stdout
    assert run("dead-letters", "purge", "--yes", *at).stdout.strip() == "Deleted 1 dead letter."


def test_no_message_in_the_sources_hedges_a_plural() -> None:
    """No "(s)" in the library's texts: counts are worded for their number."""
    sources = Path(__file__).resolve().parent.parent / "src" / "discord_logging"
    hedged = [
        f"{path.name}:{number}"
        for path in sorted(sources.rglob("*"))
        if path.suffix in (".py", ".j2")
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if "(s)" in line
    ]
    assert hedged == []


# -- bidirectional controls --------------------------------------------------------------------


def test_bidi_controls_never_reach_discord(fake: FakeDiscord) -> None:
    """Right-to-left overrides and the other bidi controls in a message, an extra value and
    a traceback are removed from everything sent, attachments included; a message of only
    bidi controls counts as blank."""
    handler = DiscordHandler(
        webhooks={"general": fake.add_webhook()}, allowed_hosts=fake.host, aggregate_window=0
    )
    log = attach(handler)
    try:
        raise ValueError(f"bad file \u202egpj.exe{BIDI}")
    except ValueError:
        log.exception("upload of \u202etxt.exe\u202c refused", extra={"file": f"\u2067x{BIDI}"})
    log.error(BIDI)
    log.error("long %s", "\u202e" + "y" * 9000)  # cut: the full text goes as a file
    assert handler.flush(FAILSAFE)
    handler.close()
    sent = json.dumps([m.payload for m in fake.messages], ensure_ascii=False)
    sent += "".join(str(f) for m in fake.messages for f in m.files.values())
    assert not any(char in sent for char in BIDI)
    titles = [e["title"] for m in fake.messages for e in m.embeds]
    assert titles[:2] == ["upload of txt.exe refused", "(blank log message)"]
    assert any(m.files for m in fake.messages)


# -- the HTTP stack's request lines -----------------------------------------------------------


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(f"{record.name}: {record.getMessage()}")


@pytest.fixture
def console() -> Iterator[_Collect]:
    """A handler on the root logger at INFO, as logging.basicConfig(level=INFO) sets up."""
    collect = _Collect()
    root = logging.getLogger()
    root.addHandler(collect)
    root.setLevel(logging.INFO)
    yield collect
    root.removeHandler(collect)


def _send_one(fake: FakeDiscord, token: str) -> None:
    handler = DiscordHandler(
        webhooks={"general": fake.add_webhook(token=token)}, allowed_hosts=fake.host
    )
    log = attach(handler)
    log.error("one alert")
    assert handler.flush(FAILSAFE)
    handler.close()


def test_library_request_lines_stay_out_of_the_console(
    fake: FakeDiscord, console: _Collect
) -> None:
    """By default the library's own httpx lines are dropped, while the application's own
    httpx requests still log theirs."""
    _send_one(fake, "tok-default")
    assert fake.messages
    assert not [line for line in console.lines if line.startswith("httpx")]
    httpx.get(f"{fake.base_url}/api/v10/gateway", timeout=5)  # the application's own request
    assert [line for line in console.lines if "HTTP Request: GET" in line]


def test_configuring_the_httpx_logger_brings_the_lines_back_redacted(
    fake: FakeDiscord, console: _Collect
) -> None:
    """A level of its own on the httpx logger opts in: the library's request lines appear,
    their token redacted."""
    logging.getLogger("httpx").setLevel(logging.INFO)
    _send_one(fake, "tok-opted-in")
    requests = [line for line in console.lines if "HTTP Request: POST" in line]
    assert requests
    assert all("/***" in line and "tok-opted-in" not in line for line in requests)


@pytest.mark.slow  # a real process
def test_basic_config_console_shows_no_request_lines(fake: FakeDiscord) -> None:
    """A script with logging.basicConfig(level=INFO) that sends an alert prints its own line,
    not httpx's."""
    script = (
        "import logging, sys\n"
        "from discord_logging import DiscordHandler\n"
        "logging.basicConfig(level=logging.INFO)\n"
        "handler = DiscordHandler(webhooks={'general': sys.argv[1]}, allowed_hosts=sys.argv[2])\n"
        "logging.getLogger().addHandler(handler)\n"
        "logging.getLogger('app').error('disk full')\n"
        "assert handler.flush(60)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, fake.add_webhook(), fake.host],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "ERROR:app:disk full" in done.stderr
    assert "HTTP Request" not in done.stderr
    assert len(fake.messages) == 1
