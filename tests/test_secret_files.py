"""Secrets from files (Docker and Kubernetes secrets): ``DISCORD_WEBHOOK_<TYPE>_FILE`` and
``DISCORD_REDIS_URL_FILE`` hold the value, trimmed; errors name the variable and the file,
never what the file holds."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from conftest import ERRORS_WEBHOOK, WEBHOOK
from entry_point import run
from waiting import FAILSAFE

from discord_logging import DiscordHandler
from discord_logging.errors import ConfigurationError
from discord_logging.settings import load_settings
from discord_logging.testing import FakeDiscord

TOKEN = ERRORS_WEBHOOK.rsplit("/", 1)[1]
PASSWORD = "s3cret-Pass"


def secret(tmp_path: Path, name: str, text: str) -> Path:
    """A secret file as Docker mounts it (often with a trailing newline)."""
    path = tmp_path / "secrets" / name
    path.parent.mkdir(exist_ok=True)
    path.write_text(text)
    return path


def test_webhook_from_a_file_delivers(
    fake_discord: FakeDiscord, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """DISCORD_WEBHOOK_GENERAL_FILE names a file holding the URL (plus a newline): the handler
    posts to that webhook."""
    url = fake_discord.add_webhook()
    monkeypatch.setenv("DISCORD_WEBHOOK_GENERAL_FILE", str(secret(tmp_path, "hook", f"{url}\n")))
    handler = DiscordHandler(allowed_hosts=fake_discord.host)
    log = logging.getLogger("secret.files")
    log.addHandler(handler)
    log.propagate = False
    try:
        log.warning("from a secret file")
        assert handler.flush(FAILSAFE)
    finally:
        log.removeHandler(handler)
        handler.close()
    assert fake_discord.messages[0].embeds[0]["title"] == "from a secret file"


def test_file_values_are_trimmed_and_mapped_to_their_type(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """_ERRORS_FILE and _ERROR_FILE both name the error type; the URL is read trimmed."""
    monkeypatch.setenv("DISCORD_WEBHOOK_GENERAL", WEBHOOK)
    monkeypatch.setenv(
        "DISCORD_WEBHOOK_ERROR_FILE", str(secret(tmp_path, "e", f"  {ERRORS_WEBHOOK} \r\n"))
    )
    settings = load_settings()
    assert settings.webhooks["error"].get_secret_value() == ERRORS_WEBHOOK


def _binary(tmp: Path) -> Path:
    path = tmp / "binary"
    path.write_bytes(b"\xff\xfe\x00https")
    return path


@pytest.mark.parametrize(
    ("make", "why"),
    [
        (lambda tmp: tmp / "missing", "No such file or directory"),
        (lambda tmp: tmp, "Is a directory"),
        (lambda tmp: secret(tmp, "blank", " \n"), "which is empty"),
        (_binary, "not UTF-8 text"),
    ],
    ids=["missing", "a-directory", "empty", "not-text"],
)
def test_unusable_file_is_a_configuration_error(
    make: object, why: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A missing, unreadable, empty or binary file stops start-up naming the variable and
    the file."""
    path = make(tmp_path)  # type: ignore[operator]
    monkeypatch.setenv("DISCORD_WEBHOOK_ERRORS_FILE", str(path))
    with pytest.raises(ConfigurationError) as info:
        load_settings()
    assert f"DISCORD_WEBHOOK_ERRORS_FILE names {path}" in str(info.value)
    assert why in str(info.value)


def test_a_bad_url_in_a_file_names_the_file_never_the_token(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A foreign host in the file is refused naming the variable and the file; the token
    in the file appears nowhere."""
    path = secret(tmp_path, "e", ERRORS_WEBHOOK.replace("discord.com", "evil.example"))
    monkeypatch.setenv("DISCORD_WEBHOOK_ERRORS_FILE", str(path))
    with pytest.raises(ConfigurationError) as info:
        load_settings()
    text = str(info.value)
    assert f"DISCORD_WEBHOOK_ERRORS_FILE ({path}): host 'evil.example'" in text
    assert TOKEN not in text


@pytest.mark.parametrize(
    "pair",
    [
        ("DISCORD_WEBHOOK_ERRORS", "DISCORD_WEBHOOK_ERRORS_FILE"),
        ("DISCORD_WEBHOOK_ERROR", "DISCORD_WEBHOOK_ERRORS"),
    ],
)
def test_one_type_set_twice_in_one_place_is_an_error(
    pair: tuple[str, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Two variables for one alert type in the environment, with different values: keep
    one, says the error."""
    path = secret(tmp_path, "e", ERRORS_WEBHOOK)
    values = {pair[0]: ERRORS_WEBHOOK, pair[1]: str(path) if pair[1].endswith("_FILE") else WEBHOOK}
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigurationError, match="keep one") as info:
        load_settings()
    assert all(name in str(info.value) for name in pair)
    assert TOKEN not in str(info.value)


def test_one_url_under_both_names_is_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    """DISCORD_WEBHOOK_ERROR and DISCORD_WEBHOOK_ERRORS with the same URL: no conflict."""
    monkeypatch.setenv("DISCORD_WEBHOOK_ERROR", ERRORS_WEBHOOK)
    monkeypatch.setenv("DISCORD_WEBHOOK_ERRORS", ERRORS_WEBHOOK)
    assert load_settings().webhooks["error"].get_secret_value() == ERRORS_WEBHOOK


def test_environment_file_wins_over_dotenv_url(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The environment wins over .env for a type, whichever form each uses."""
    Path(".env").write_text(f"DISCORD_WEBHOOK_GENERAL={WEBHOOK}\n")
    monkeypatch.setenv("DISCORD_WEBHOOK_GENERAL_FILE", str(secret(tmp_path, "g", ERRORS_WEBHOOK)))
    assert load_settings().webhooks["general"].get_secret_value() == ERRORS_WEBHOOK


def test_webhooks_keyword_ignores_webhook_files(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """webhooks= replaces every DISCORD_WEBHOOK_* variable, files included (even a missing one)."""
    monkeypatch.setenv("DISCORD_WEBHOOK_ERRORS_FILE", str(tmp_path / "missing"))
    assert set(load_settings(webhooks={"general": WEBHOOK}).webhooks) == {"general"}


def test_redis_url_from_a_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """DISCORD_REDIS_URL_FILE (in .env too) gives the Redis URL, trimmed."""
    url = f"redis://:{PASSWORD}@cache:6379/2"
    path = secret(tmp_path, "redis", url + "\n")
    Path(".env").write_text(f"DISCORD_WEBHOOK_GENERAL={WEBHOOK}\nDISCORD_REDIS_URL_FILE={path}\n")
    settings = load_settings()
    assert settings.redis_url is not None
    assert settings.redis_url.get_secret_value() == url
    assert load_settings(redis_url="redis://other:6379/0").redis_url is not None  # keyword wins


@pytest.mark.parametrize(
    ("content", "plain", "problem"),
    [
        (None, None, "which cannot be read (No such file or directory)"),
        (f"redis://:{PASSWORD}@cache:port/0", None, "the port is not a number"),
        ("redis://cache:6379/0", "redis://other:6379/0", "are both set. Fix: keep one"),
    ],
    ids=["missing", "bad-port", "both-set"],
)
def test_redis_url_file_problems(
    content: str | None,
    plain: str | None,
    problem: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """A Redis URL file that is missing, holds a bad URL, or is set beside DISCORD_REDIS_URL
    stops start-up naming DISCORD_REDIS_URL_FILE, never the password."""
    path = tmp_path / "redis" if content is None else secret(tmp_path, "redis", content)
    monkeypatch.setenv("DISCORD_WEBHOOK_GENERAL", WEBHOOK)
    monkeypatch.setenv("DISCORD_REDIS_URL_FILE", str(path))
    if plain:
        monkeypatch.setenv("DISCORD_REDIS_URL", plain)
    with pytest.raises(ConfigurationError) as info:
        load_settings()
    text = str(info.value)
    assert "DISCORD_REDIS_URL_FILE" in text
    assert problem in text
    assert PASSWORD not in text
    assert "DISCORD_REDIS_URL: DISCORD_REDIS_URL_FILE" not in text  # named once


@pytest.mark.slow  # a real process
def test_check_accepts_secret_files_and_names_a_missing_one(tmp_path: Path) -> None:
    """check: _FILE variables are ours (no typo warning) and a missing file is one clear
    line, exit 3."""
    path = secret(tmp_path, "errors", ERRORS_WEBHOOK + "\n")
    env = {"DISCORD_WEBHOOK_GENERAL": WEBHOOK, "DISCORD_WEBHOOK_ERRORS_FILE": str(path)}
    done = run("check", env=env)
    assert done.returncode == 0, done.stderr
    assert "/webhooks/222222222222222222/***" in done.stdout
    done = run("check", env={**env, "DISCORD_WEBHOOK_ERRORS_FILE": str(tmp_path / "gone")})
    assert done.returncode == 3
    assert f"DISCORD_WEBHOOK_ERRORS_FILE names {tmp_path / 'gone'}" in done.stderr
    assert "Traceback" not in done.stderr
    assert TOKEN not in done.stdout + done.stderr


def test_plain_variable_in_the_environment_wins_over_a_dotenv_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """DISCORD_REDIS_URL in the environment wins over DISCORD_REDIS_URL_FILE in .env, whose
    file is then not even read."""
    Path(".env").write_text(f"DISCORD_REDIS_URL_FILE={tmp_path / 'missing'}\n")
    monkeypatch.setenv("DISCORD_WEBHOOK_GENERAL", WEBHOOK)
    monkeypatch.setenv("DISCORD_REDIS_URL", "redis://cache:6379/1")
    settings = load_settings()
    assert settings.redis_url is not None
    assert settings.redis_url.get_secret_value() == "redis://cache:6379/1"


def test_webhooks_keyword_must_be_a_mapping() -> None:
    """webhooks= that is not a mapping is refused in words."""
    with pytest.raises(ConfigurationError, match="must map alert type names to webhook URLs"):
        load_settings(webhooks=WEBHOOK)


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("redis://cache:6379/0", None),
        ("rediss://:p%2Fw@cache:6380/15", None),
        ("redis://cache:6379/x?db=2", None),
        ("redis://cache", None),
        ("unix:///run/redis/redis.sock", None),
        ("unix://", "names no socket path"),
        ("memcached://cache:11211", "must start with redis://"),
        ("redis://:pa/ss@cache:6379/0", "holds a '/', '?' or '#'"),
        ("redis://:pa?ss@cache:6379/0", "holds a '/', '?' or '#'"),
        ("redis://:pass@cache:63x9/0", "the port is not a number"),
        ("redis://cache:70000/0", "the port is not a number"),
        ("redis://cache:6379/zero", "the database (the path after the host) is not a number"),
    ],
)
def test_redis_url_problems(url: str, problem: str | None) -> None:
    """Which Redis URLs redis-py would misread, from a table; the password is never quoted."""
    from discord_logging.settings import redis_url_problem

    found = redis_url_problem(url)
    if problem is None:
        assert found is None
    else:
        assert found is not None
        assert problem in found
        assert "pa/ss" not in found
        assert "Fix:" in found or found.startswith("must start")
