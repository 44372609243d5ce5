"""Configuration errors are raised where the user configured (issue 27, point 2).

``DiscordHandler(...)``, and so ``logging.config.dictConfig``, raise ``ConfigurationError``
(a ``ValueError``) for every mistake that can be found without the network, as every stdlib
handler does on a bad argument. The message names the setting the way the user gave it (a
keyword, an environment variable, a line of a ``.env`` file), says what is wrong and the fix
once, and never shows a token or a password. On ec27658 the settings were checked on the
worker thread: ``dictConfig`` returned normally and every record was dropped."""

from __future__ import annotations

import logging
import logging.config
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import ERRORS_WEBHOOK, WEBHOOK
from freshkit import FreshProcess
from processkit import titles
from waiting import wait_for

from discord_logging import DiscordHandler
from discord_logging.errors import ConfigurationError
from discord_logging.testing import FakeDiscord

TOKEN = WEBHOOK.rsplit("/", 1)[1]
ERRORS_TOKEN = ERRORS_WEBHOOK.rsplit("/", 1)[1]
PASSWORD = "s3cret-redis-pass"
MALFORMED = "https://discord.com/api/webhooks/not-a-number/" + ERRORS_TOKEN
WITHOUT_TOKEN = ERRORS_WEBHOOK.rsplit("/", 1)[0]
QUOTED = f'"{ERRORS_WEBHOOK}"'  # as docker --env-file passes DISCORD_WEBHOOK_ERRORS="..."
NOT_DISCORD = "https://hooks.example.com/api/webhooks/222222222222222222/" + ERRORS_TOKEN


def _templates(tmp_path: Path, text: str) -> Path:
    folder = tmp_path / "templates"
    folder.mkdir()
    (folder / "error.j2").write_text(text, encoding="utf-8")
    return folder


def _bad_url(url: str) -> dict[str, Any]:
    return {"webhooks": {"general": WEBHOOK, "error": url}}


Options = Callable[[Path], dict[str, Any]]
# One mistake each: the handler's options, and how the message must name the setting.
MISTAKES: list[tuple[str, Options, str]] = [
    ("malformed-url", lambda _: _bad_url(MALFORMED), "webhooks['error']"),
    ("url-without-token", lambda _: _bad_url(WITHOUT_TOKEN), "webhooks['error']"),
    ("url-in-quotes", lambda _: _bad_url(QUOTED), "webhooks['error']"),
    ("not-a-discord-host", lambda _: _bad_url(NOT_DISCORD), "webhooks['error']"),
    ("rate-limit-not-a-number", lambda _: {"rate_limit": "lots"}, "rate_limit"),
    ("no-retry-attempt", lambda _: {"retry_attempts": 0}, "retry_attempts"),
    ("unknown-incident-updates", lambda _: {"incident_updates": "bogus"}, "incident_updates"),
    (
        "route-to-a-type-without-webhook-or-fallback",
        lambda _: {"webhooks": {"error": ERRORS_WEBHOOK}, "routes": {"app.audit": "audit"}},
        "audit",
    ),
    ("buttons-not-json", lambda _: {"buttons": "error=runbook"}, "buttons"),
    ("silent-not-a-boolean", lambda _: {"silent": "error=maybe"}, "silent"),
    ("forum-tags-not-pairs", lambda _: {"forum_tags": "error"}, "forum_tags"),
    (
        "redis-port-not-a-number",
        lambda _: {"redis_url": f"redis://app:{PASSWORD}@cache:notaport/0"},
        "redis_url",
    ),
    (
        "templates-dir-missing",
        lambda tmp: {"templates_dir": str(tmp / "no-such-folder")},
        "templates_dir",
    ),
    (
        "template-syntax-error",
        lambda tmp: {"templates_dir": str(_templates(tmp, '{% extends "base.j2" %}{{ broken'))},
        "error.j2",
    ),
]


def _options(options: dict[str, Any]) -> dict[str, Any]:
    """``options`` with a good ``general`` webhook unless they set the webhooks."""
    return {"webhooks": {"general": WEBHOOK}, **options}


def _config(options: dict[str, Any]) -> dict[str, Any]:
    handler = {"class": "discord_logging.DiscordHandler", "level": "ERROR", **_options(options)}
    loggers = {"loud": {"handlers": ["discord"], "level": "INFO", "propagate": False}}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "handlers": {"discord": handler},
        "loggers": loggers,
    }


def _assert_no_secret(message: str) -> None:
    for secret in (TOKEN, ERRORS_TOKEN, PASSWORD):
        assert secret not in message, message


@pytest.mark.parametrize(
    ("options", "named"), [m[1:] for m in MISTAKES], ids=[m[0] for m in MISTAKES]
)
def test_dictconfig_raises_at_once_for_each_mistake(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], options: Options, named: str
) -> None:
    """``dictConfig`` with one mistake in the handler's settings raises ValueError at once
    (``Unable to configure handler 'discord'``), caused by a ConfigurationError that names the
    setting as given (the keyword), says the fix once, and shows no token or password."""
    with pytest.raises(ValueError, match="Unable to configure handler 'discord'") as raised:
        logging.config.dictConfig(_config(options(tmp_path)))
    cause = raised.value.__cause__
    assert isinstance(cause, ConfigurationError), repr(cause)
    message = str(cause)
    assert named in message, message
    assert message.count("Fix:") == 1, message
    _assert_no_secret(message + capsys.readouterr().err)


KEYWORDS = ("webhooks['error']", "rate_limit")
VARIABLES = ("DISCORD_WEBHOOK_ERRORS", "DISCORD_RATE_LIMIT")


@pytest.mark.parametrize("given", ["keyword", "environment"])
def test_mistakes_are_named_the_way_the_user_gave_them(
    monkeypatch: pytest.MonkeyPatch, given: str
) -> None:
    """Two mistakes (a URL not on a Discord host, ``rate_limit`` "lots"): given as keywords,
    both are named as the keywords (``webhooks['error']``, ``rate_limit``) and never as
    variables; given in the environment, as the variables (``DISCORD_WEBHOOK_ERRORS``,
    ``DISCORD_RATE_LIMIT``) and never as keywords. Each fix once, the token not shown."""
    options: dict[str, Any] = {}
    if given == "keyword":
        options = {**_bad_url(NOT_DISCORD), "rate_limit": "lots"}
    else:
        monkeypatch.setenv("DISCORD_WEBHOOK_GENERAL", WEBHOOK)
        monkeypatch.setenv("DISCORD_WEBHOOK_ERRORS", NOT_DISCORD)
        monkeypatch.setenv("DISCORD_RATE_LIMIT", "lots")
    named, never = (KEYWORDS, VARIABLES) if given == "keyword" else (VARIABLES, KEYWORDS)
    with pytest.raises(ConfigurationError) as raised:
        DiscordHandler(**options)
    message = str(raised.value)
    for name in named:
        assert name in message, message
    for name in never:
        assert name not in message, message
    assert message.count("Fix:") == 2, message
    _assert_no_secret(message)


def test_a_dotenv_mistake_names_the_variable_the_file_and_its_line(tmp_path: Path) -> None:
    """A bad URL on line 3 of ``.env`` (in the working directory) is named as the variable
    with the file and the line: ``DISCORD_WEBHOOK_ERRORS (.env line 3)``."""
    (tmp_path / ".env").write_text(
        f"# alerts\nDISCORD_WEBHOOK_GENERAL={WEBHOOK}\nDISCORD_WEBHOOK_ERRORS={NOT_DISCORD}\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigurationError) as raised:
        DiscordHandler()
    message = str(raised.value)
    assert re.search(r"DISCORD_WEBHOOK_ERRORS \([^)]*\.env[^)]*line 3\)", message), message
    assert message.count("Fix:") == 1, message
    _assert_no_secret(message)


@pytest.mark.parametrize("given", ["keyword", "environment"])
def test_a_url_in_quotes_is_said_to_be_in_quotes(
    monkeypatch: pytest.MonkeyPatch, given: str
) -> None:
    """A webhook URL with its quote characters (``docker --env-file`` keeps them) is reported
    as quoted, not as a host that is not Discord's; the fix once, no token."""
    options = _bad_url(QUOTED) if given == "keyword" else {}
    if given == "environment":
        monkeypatch.setenv("DISCORD_WEBHOOK_GENERAL", WEBHOOK)
        monkeypatch.setenv("DISCORD_WEBHOOK_ERRORS", QUOTED)
    with pytest.raises(ConfigurationError) as raised:
        DiscordHandler(**options)
    message = str(raised.value)
    assert "quote" in message.lower(), message
    assert "(none)" not in message, message
    assert "not a Discord host" not in message, message
    assert message.count("Fix:") == 1, message
    _assert_no_secret(message)


def test_a_webhook_url_problem_gives_its_advice_once() -> None:
    """The URL error says where to copy the URL from once, not in the problem and again in
    the fix (ec27658 said "Channel settings > Integrations" twice)."""
    with pytest.raises(ConfigurationError) as raised:
        DiscordHandler(**_bad_url(WITHOUT_TOKEN))
    message = str(raised.value)
    assert message.count("Fix:") == 1, message
    assert message.count("Channel settings") <= 1, message
    _assert_no_secret(message)


# The handler in a fresh process (the "once per process" is the process's): misspelt DISCORD_*
# names in the environment, the webhooks from the environment too; two handlers one after the
# other; an error logged to the second.
MISSPELT = """
from pathlib import Path
first = DiscordHandler(aggregate_window=0)
first.close()
handler = DiscordHandler(aggregate_window=0)
log.addHandler(handler)
log.error("delivered despite the typos")
Path("logged").touch()
sys.stdin.readline()
"""


@pytest.mark.slow
def test_misspelt_discord_variables_are_said_once_with_a_suggestion_and_the_handler_works(
    fake_discord: FakeDiscord, tmp_path: Path
) -> None:
    """``DISCORD_WEBHOOK_ERORRS`` and ``DISCORD_RATELIMIT`` in the environment: the handler
    says on stderr, once per process however many handlers it builds, that each is not a
    setting, with "did you mean" the right one, and still starts: the error arrives (at
    ``general``, as ERRORS is not set)."""
    general = fake_discord.add_webhook(host="localhost")
    env = {
        "DISCORD_WEBHOOK_GENERAL": general,
        "DISCORD_WEBHOOK_ERORRS": fake_discord.add_webhook(host="localhost"),
        "DISCORD_RATELIMIT": "5",
        "DISCORD_ALLOWED_HOSTS": fake_discord.named_host,
        "DISCORD_STORE_PATH": str(tmp_path / "store"),
        "DISCORD_CLOSE_TIMEOUT": "1",
    }
    env.update({k: v for k, v in os.environ.items() if not k.startswith("DISCORD_")})
    with FreshProcess(MISSPELT, env, tmp_path) as app:
        app.reach("logged")
        arrived = wait_for(lambda: titles(fake_discord) == ["delivered despite the typos"])
        assert arrived, f"{titles(fake_discord)}\n{app.output()}"
        assert app.finish() == 0, app.output()
    assert [m.webhook_id for m in fake_discord.messages] == [general.split("/")[-2]]
    stderr = app.stderr()
    for typo, meant in [
        ("DISCORD_WEBHOOK_ERORRS", "DISCORD_WEBHOOK_ERRORS"),
        ("DISCORD_RATELIMIT", "DISCORD_RATE_LIMIT"),
    ]:
        said = [line for line in stderr.splitlines() if typo in line]
        assert len(said) == 1, stderr
        assert f"did you mean {meant}" in said[0], stderr
