"""Security: no token anywhere the library writes, no pings from log text, no escapes."""

from __future__ import annotations

import json
import logging
import signal
from pathlib import Path
from urllib.parse import quote

import pytest
from processkit import next_start, run_script, script_env
from startkit import started_handler
from waiting import FAILSAFE

from discord_logging import DiscordHandler
from discord_logging.cli import main
from discord_logging.errors import ConfigurationError, TemplateError
from discord_logging.redaction import redact
from discord_logging.render.templating import EmbedRenderer
from discord_logging.store import Store
from discord_logging.testing import FakeDiscord

SECRET = "ZZsecretTOKENzz_0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQR"


def test_token_never_appears_in_anything_written(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """One run, every output scanned: logs, stderr, reprs, stats, history, dead letters,
    exceptions, CLI output, and what Discord itself received."""
    store = tmp_path / "store"
    outputs: list[str] = []
    with FakeDiscord() as fake:
        good = fake.add_webhook(token=SECRET)
        broken = fake.add_webhook(token=SECRET + "2")
        fake.set_status_override(broken.split("/")[-2], 503)
        gone = fake.add_webhook(token=SECRET + "3")
        fake.delete_webhook(gone.split("/")[-2])
        caplog.set_level(logging.DEBUG)
        # httpx and httpcore at their chattiest: configured by the user, so the library's own
        # request lines are kept (and must be redacted).
        caplog.set_level(logging.DEBUG, logger="httpx")
        caplog.set_level(logging.DEBUG, logger="httpcore")
        handler = DiscordHandler(
            webhooks={"general": good, "error": broken, "security": gone},
            allowed_hosts=fake.host,
            retry_attempts=1,
            store_path=str(store),
            aggregate_window=0,
        )
        logger = logging.getLogger("app")
        logger.addHandler(handler)
        logger.propagate = True
        logger.warning("someone logged the URL itself: %s", good)
        logger.error("this one fails: %s", broken)
        logger.warning("to a deleted webhook", extra={"alert_type": "security", "url": gone})
        for form in _encoded_forms(good)[1:]:
            logger.warning("an encoded URL: %s", form, extra={"url": form})
        assert handler.flush(FAILSAFE)
        outputs += [repr(handler), repr(handler.settings), str(handler.settings.as_dict())]
        outputs.append(json.dumps(handler.stats()))
        handler.close()
        outputs += [json.dumps(m.payload) for m in fake.messages]
        outputs += [str(f) for m in fake.messages for f in m.files.values()]
    with pytest.raises(ConfigurationError) as bad:
        started_handler(webhooks={"general": good.replace("127.0.0.1", "evil.example")})
    outputs.append(str(bad.value))
    reopened = Store(store)
    assert reopened.history is not None
    outputs += [json.dumps(e) for e in reopened.history.query(limit=100)]
    outputs += [json.dumps(x.to_dict()) for x in reopened.dead_letters.letters()]
    assert len(reopened.dead_letters.letters()) == 2
    reopened.close()
    monkeypatch.setenv("DISCORD_WEBHOOK_GENERAL", good)
    monkeypatch.setenv("DISCORD_ALLOWED_HOSTS", "127.0.0.1")
    for argv in (
        ["check"],
        ["check", "--json"],
        ["history", "--store", str(store)],
        ["history", "--store", str(store), "--json"],
        ["dead-letters", "list", "--store", str(store), "--json"],
        ["dead-letters", "list", "--store", str(store)],
        ["stats", "--store", str(store), "--json"],
    ):
        main(argv)
    captured = capsys.readouterr()
    outputs += [captured.out, captured.err]
    # What the library and its HTTP stack logged (the app's own lines are the app's business).
    ours = ("discord_logging", "httpx", "httpcore")
    library_records = [r for r in caplog.records if r.name.split(".")[0] in ours]
    assert any(r.name == "httpx" for r in library_records)
    outputs += [r.getMessage() for r in library_records]
    outputs += [p.read_text(errors="replace") for p in store.rglob("*.val")]
    everything = "\n".join(outputs)
    assert "/webhooks/" in everything  # the scan did see URLs, redacted
    assert SECRET not in everything


def test_log_text_never_pings(tmp_path: Path) -> None:
    """@everyone, @here, role and user mentions in log text reach Discord unable to ping."""
    with FakeDiscord() as fake:
        handler = DiscordHandler(
            webhooks={"general": fake.add_webhook()},
            allowed_hosts=fake.host,
            store_path=str(tmp_path / "s"),
        )
        logger = logging.getLogger("pings")
        logger.addHandler(handler)
        logger.error("@everyone @here <@&123> <@456> <@!789>")
        logger.error("x", extra={"note": "@everyone"})
        assert handler.flush(FAILSAFE)
        handler.close()
    for message in fake.messages:
        assert message.payload["allowed_mentions"] == {"parse": []}
        assert "content" not in message.payload
        text = json.dumps(message.payload, ensure_ascii=False)
        for mention in ("@everyone", "@here", "<@&123>", "<@456>", "<@!789>"):
            assert mention not in text


@pytest.mark.parametrize(
    "expression",
    [
        "''.__class__.__mro__[1].__subclasses__()",
        "cycler.__init__.__globals__",
        "self._TemplateReference__context",
        "title.__class__.__base__.__subclasses__()",
        "lipsum.__globals__['os']",
        "range.__init__.__globals__",
    ],
)
def test_template_sandbox_refuses_escapes(tmp_path: Path, expression: str) -> None:
    """Classic Jinja2 sandbox escapes fail template validation instead of running."""
    (tmp_path / "general.j2").write_text(
        '{% extends "base.j2" %}{% block title %}{{ ' + expression + " }}{% endblock %}"
    )
    with pytest.raises(TemplateError):
        EmbedRenderer(templates_dir=tmp_path).validate()


def test_foreign_host_refused_by_the_handler() -> None:
    """A webhook URL on a host that is not Discord's nor allowed stops start-up, token hidden."""
    url = f"https://discord.example.net/api/webhooks/1/{SECRET}"
    with pytest.raises(ConfigurationError, match="DISCORD_ALLOWED_HOSTS") as info:
        started_handler(webhooks={"general": url})
    assert SECRET not in str(info.value)


def _encoded_forms(url: str) -> list[str]:
    """A webhook URL as logs carry it: plain, percent-encoded (``%2F``, also ``%3A``),
    JSON-escaped, and inside another URL's query, encoded and not."""
    return [
        url,
        url.replace("/", "%2F"),
        quote(url, safe=""),
        json.dumps(url).replace("/", "\\/"),
        f"https://proxy.example/go?to={quote(url, safe='')}&then=1",
        f"https://proxy.example/go?to={url}&then=1",
    ]


@pytest.mark.parametrize("form", range(6))
def test_redact_hides_encoded_tokens(form: int) -> None:
    """Every encoded spelling of a webhook URL loses its token, and keeps its id."""
    text = _encoded_forms(f"https://discord.com/api/webhooks/123/{SECRET}")[form]
    out = redact(f"before {text} after")
    assert SECRET not in out
    assert "123" in out
    assert "***" in out
    assert out.endswith(" after")


def test_a_killed_process_journal_holds_no_token(fake_discord: FakeDiscord, tmp_path: Path) -> None:
    """A process logs webhook URLs (plain and encoded, in the message, the template, an
    ``extra=`` value and a traceback) during an outage and is SIGKILLed: its journal's bytes
    hold no token, and the next start delivers the records with none either."""
    url = fake_discord.add_webhook(host="localhost", token=SECRET)
    store = tmp_path / "store"
    fake_discord.fail_next(10_000, 503)
    body = f"""
import signal, time
forms = {_encoded_forms(url)!r}
handler = make_handler()
log.addHandler(handler)
for form in forms:
    log.error("logged %s", form, extra={{"where": form}})
log.error(f"in the template {{forms[2]}}")
try:
    raise RuntimeError(forms[1])
except RuntimeError:
    log.exception("with a traceback")
deadline = time.monotonic() + 10
while handler.stats()["emitted"] < len(forms) + 2 and time.monotonic() < deadline:
    time.sleep(0.01)
time.sleep(0.3)
os.kill(os.getpid(), signal.SIGKILL)
"""
    done = run_script(body, script_env(fake_discord, url, store), tmp_path)
    assert done.returncode == -signal.SIGKILL, done.stderr
    segments = list((store / "journal").iterdir())
    assert segments
    written = b"".join(p.read_bytes() for p in segments)
    assert b"webhooks" in written  # the records are there, redacted
    assert SECRET.encode() not in written
    fake_discord.reset()
    again = run_script(next_start(8), script_env(fake_discord, url, store), tmp_path, "again.py")
    assert again.returncode == 0, again.stderr
    assert len(fake_discord.messages) >= 1
    assert SECRET not in json.dumps([m.payload for m in fake_discord.messages])
