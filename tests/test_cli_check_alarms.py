"""``discord-logging check`` neither cries wolf nor misses: documented aliases and other
programs' ``DISCORD_*`` variables pass; a missing redis package, an unparseable Redis URL and
missing CA certificates exit 3 with one clear message. Run as the installed command."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import pytest
from conftest import ERRORS_WEBHOOK, WEBHOOK
from entry_point import run
from startkit import started_handler

from discord_logging.cli import preflight
from discord_logging.config import variables
from discord_logging.errors import ConfigurationError
from discord_logging.settings import Secret

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "hunter2-SECRET"
CERTIFICATE_VARIABLES = ("SSL_CERT_FILE", "SSL_CERT_DIR")


def messages(stderr: str) -> list[str]:
    """The problems check printed: each starts a line with ``discord-logging:``."""
    return [line for line in stderr.splitlines() if line.startswith("discord-logging:")]


def documented_webhook_aliases() -> set[str]:
    """Every DISCORD_WEBHOOK_<built-in type or alias> the docs and .env.example name."""
    text = "\n".join(
        path.read_text(encoding="utf-8")
        for path in [ROOT / "README.md", ROOT / ".env.example", *(ROOT / "docs").rglob("*.md")]
    )
    names = set(re.findall(r"DISCORD_WEBHOOK_[A-Z]+(?![A-Z_<])", text))
    builtin = {"GENERAL", "ERROR", "ERRORS", "CRITICAL", "TRACKLIST", "MONITORING", "SECURITY"}
    return {name for name in names if name.removeprefix("DISCORD_WEBHOOK_") in builtin}


@pytest.mark.slow  # a real process
def test_every_documented_webhook_alias_passes_check() -> None:
    """DISCORD_WEBHOOK_ERROR (documented as working) and every other built-in name the docs
    use pass check, with no typo warning."""
    aliases = documented_webhook_aliases()
    assert {"DISCORD_WEBHOOK_ERROR", "DISCORD_WEBHOOK_ERRORS"} <= aliases
    for name in sorted(aliases):
        env = {"DISCORD_WEBHOOK_GENERAL": WEBHOOK}
        if name != "DISCORD_WEBHOOK_GENERAL":
            env[name] = ERRORS_WEBHOOK
        done = run("check", env=env)
        assert done.returncode == 0, f"{name}: {done.stderr}"
        assert done.stderr == ""


@pytest.mark.slow  # a real process
def test_error_alias_routes_the_error_type() -> None:
    """DISCORD_WEBHOOK_ERROR carries the error type, like DISCORD_WEBHOOK_ERRORS."""
    done = run(
        "--json",
        "check",
        env={"DISCORD_WEBHOOK_GENERAL": WEBHOOK, "DISCORD_WEBHOOK_ERROR": ERRORS_WEBHOOK},
    )
    assert done.returncode == 0, done.stderr
    assert '"alert_type": "error",\n      "fallback": false' in done.stdout


@pytest.mark.slow  # a real process
def test_other_programs_variables_are_not_typos() -> None:
    """A bot's token, OAuth2 and interactions settings and ids are not reported."""
    others = {
        "DISCORD_TOKEN": "x",
        "DISCORD_BOT_TOKEN": "x",
        "DISCORD_BOT_PREFIX": "!",
        "DISCORD_CLIENT_ID": "1",
        "DISCORD_CLIENT_SECRET": "x",
        "DISCORD_APPLICATION_ID": "1",
        "DISCORD_PUBLIC_KEY": "ab",
        "DISCORD_GUILD_ID": "1",
        "DISCORD_CHANNEL_IDS": "1,2",
        "DISCORD_REDIRECT_URI": "https://example.com/cb",
    }
    done = run("check", env={"DISCORD_WEBHOOK_GENERAL": WEBHOOK, **others})
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""


def test_other_programs_patterns_never_hide_a_setting() -> None:
    """No setting's variable (nor a built-in webhook's) matches the other-programs list, so
    its typos are still caught."""
    ours = preflight.known_variables() | preflight.builtin_webhook_variables()
    assert [name for name in ours if variables._matches(name, preflight.OTHER_TOOLS)] == []
    problems = preflight.variable_problems({"DISCORD_RATE_LIMT": "the environment"})
    assert "did you mean DISCORD_RATE_LIMIT?" in problems[0]


@pytest.mark.slow  # a real process
def test_check_ignore_names_more(tmp_path: Path) -> None:
    """DISCORD_CHECK_IGNORE (environment or .env) names more variables, or patterns, that
    check leaves alone; the rest are still reported, with a hint at the setting."""
    env = {
        "DISCORD_WEBHOOK_GENERAL": WEBHOOK,
        "DISCORD_MYBOT_MODE": "x",
        "DISCORD_MYBOT_LEVEL": "x",
        "DISCORD_LOG_CHANNEL": "x",
        "DISCORD_SOMETHING": "x",
    }
    done = run("check", env=env)
    assert done.returncode == 3
    assert len(messages(done.stderr)) == 4
    assert "name it in DISCORD_CHECK_IGNORE" in done.stderr
    done = run("check", env={**env, "DISCORD_CHECK_IGNORE": "discord_mybot_*, DISCORD_LOG_CHANNEL"})
    assert done.returncode == 3
    assert messages(done.stderr) == [
        "discord-logging: DISCORD_SOMETHING (in the environment) is not a discord-logging "
        "setting: the variables are listed in docs/configuration.md (if another program "
        "reads it, name it in DISCORD_CHECK_IGNORE)"
    ]
    (tmp_path / ".env").write_text(
        "DISCORD_CHECK_IGNORE=DISCORD_MYBOT_*,DISCORD_LOG_*,DISCORD_SO*\n"
    )
    assert run("check", env=env).returncode == 0


@pytest.mark.slow  # a real process
def test_misspelt_webhook_file_variable_is_a_typo() -> None:
    """A _FILE variable whose type is misspelt is caught like the plain one."""
    done = run(
        "check",
        env={"DISCORD_WEBHOOK_GENERAL": WEBHOOK, "DISCORD_WEBHOOK_CRITCAL_FILE": "/run/x"},
    )
    assert done.returncode == 3
    assert "did you mean DISCORD_WEBHOOK_CRITICAL_FILE?" in done.stderr


@pytest.mark.slow  # a real process
def test_missing_redis_package_is_caught(tmp_path: Path) -> None:
    """DISCORD_REDIS_URL set and redis-py not importable: exit 3, one message naming the
    extra to install (the distribution's name), never 'Configuration OK.'."""
    hide = tmp_path / "hide-redis"
    hide.mkdir()
    (hide / "sitecustomize.py").write_text("import sys\nsys.modules['redis'] = None\n")
    path = os.pathsep.join(filter(None, [str(hide), os.environ.get("PYTHONPATH")]))
    done = run(
        "check",
        env={
            "PYTHONPATH": path,
            "DISCORD_WEBHOOK_GENERAL": WEBHOOK,
            "DISCORD_REDIS_URL": f"redis://:{PASSWORD}@cache:6379/0",
        },
    )
    assert done.returncode == 3, done.stdout
    assert len(messages(done.stderr)) == 1
    assert 'pip install "discord-alert-logging[redis]"' in done.stderr
    assert "Configuration OK" not in done.stdout
    assert PASSWORD not in done.stdout + done.stderr


@pytest.mark.slow  # a real process
@pytest.mark.parametrize(
    ("url", "problem"),
    [
        (f"redis://:{PASSWORD}@cache:port/0", "the port is not a number"),
        ("redis://:pass/word@cache:6379/0", "the password (or user name) holds a '/'"),
        (f"redis://:{PASSWORD}@cache:6379/zero", "the database (the path after the host)"),
        (f"http://:{PASSWORD}@cache:6379/0", "must start with redis://"),
    ],
    ids=["port", "slash-in-password", "database", "scheme"],
)
def test_unparseable_redis_url_is_caught(url: str, problem: str) -> None:
    """A Redis URL redis-py would misread: exit 3 and one message, never the password."""
    done = run("check", env={"DISCORD_WEBHOOK_GENERAL": WEBHOOK, "DISCORD_REDIS_URL": url})
    assert done.returncode == 3
    assert len(messages(done.stderr)) == 1
    assert f"DISCORD_REDIS_URL: {problem}" in done.stderr
    for secret in (PASSWORD, "pass/word", "word@"):
        assert secret not in done.stdout + done.stderr


@pytest.mark.slow  # a real process
def test_redis_url_option_redis_py_refuses_is_caught() -> None:
    """An option redis-py cannot read (?socket_timeout=soon) passes the settings but not
    check: exit 3, one message, no piece of the password."""
    url = f"redis://:{PASSWORD}@cache:6379/0?socket_timeout=soon"
    done = run("check", env={"DISCORD_WEBHOOK_GENERAL": WEBHOOK, "DISCORD_REDIS_URL": url})
    assert done.returncode == 3
    assert messages(done.stderr) == [
        "discord-logging: DISCORD_REDIS_URL cannot be read by redis-py (Invalid value for "
        "'socket_timeout' in connection URL.). Fix: write it as "
        "redis://[:password@]host:port/db[?option=value], with values redis-py accepts"
    ]
    assert "hunter2" not in done.stdout + done.stderr


@pytest.mark.slow  # a real process
def test_missing_certificate_file_is_caught(tmp_path: Path) -> None:
    """SSL_CERT_FILE naming a missing file, or one holding no certificate, and SSL_CERT_DIR
    naming no directory: exit 3, one message naming the variable and the path."""
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    cases = {
        "SSL_CERT_FILE": (tmp_path / "missing.pem", "which cannot be read (No such file"),
        "SSL_CERT_DIR": (tmp_path / "no-dir", "which is not a directory"),
    }
    for variable, (path, problem) in cases.items():
        env = {"DISCORD_WEBHOOK_GENERAL": WEBHOOK, variable: str(path)}
        done = run("check", env=env, unset=CERTIFICATE_VARIABLES)
        assert done.returncode == 3, done.stdout
        assert len(messages(done.stderr)) == 1
        assert f"discord-logging: {variable} names {path}, {problem}" in done.stderr
    env = {"DISCORD_WEBHOOK_GENERAL": WEBHOOK, "SSL_CERT_FILE": str(junk)}
    done = run("check", env=env, unset=CERTIFICATE_VARIABLES)
    assert done.returncode == 3
    assert "holds no CA certificate that can be loaded" in done.stderr


def test_handler_refuses_a_missing_certificate_file_at_start_up(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Without the check, the handler itself stops at start-up on a missing SSL_CERT_FILE
    instead of its worker failing later on every request."""
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "missing.pem"))
    with pytest.raises(ConfigurationError, match="SSL_CERT_FILE names"):
        started_handler(webhooks={"general": WEBHOOK})
    monkeypatch.delenv("SSL_CERT_FILE")
    monkeypatch.setenv("SSL_CERT_DIR", str(tmp_path / "no-dir"))
    with pytest.raises(ConfigurationError, match="SSL_CERT_DIR names"):
        started_handler(webhooks={"general": WEBHOOK})


def test_every_variable_check_knows_and_every_other_program_is_documented() -> None:
    """The variables check accepts (secret files and DISCORD_CHECK_IGNORE included) are in
    docs/configuration.md and .env.example; the other programs' list is in the docs."""
    reference = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    example = (ROOT / ".env.example").read_text(encoding="utf-8")
    for name in sorted(preflight.known_variables()):
        assert name in reference, name
        assert name in example, name
    for pattern in preflight.OTHER_TOOLS:
        assert f"`{pattern}`" in reference, pattern


def test_usable_certificates_are_no_problem(tmp_path: Path) -> None:
    """A bundle that loads, a certificate directory that exists, or neither set: no problem
    (SSL_CERT_DIR counts only without SSL_CERT_FILE, as in httpx)."""
    import certifi

    from discord_logging.transport.environment import certificate_problem

    assert certificate_problem({"SSL_CERT_FILE": certifi.where()}, load=True) is None
    assert certificate_problem({"SSL_CERT_DIR": str(tmp_path)}) is None
    assert certificate_problem({"SSL_CERT_FILE": certifi.where(), "SSL_CERT_DIR": "/no"}) is None
    assert certificate_problem({}) is None


def test_preflight_in_process(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The preflight's parts as check calls them: ignore patterns from .env, other programs'
    names left alone, a misspelt _FILE webhook caught, redis-py and certificates checked."""
    dotenv = tmp_path / "x.env"
    dotenv.write_text("DISCORD_CHECK_IGNORE=discord_mine_* DISCORD_OTHER\nDISCORD_MINE_A=1\n")
    names = preflight.configured_variables({"DISCORD_TOKEN": "t"}, dotenv)
    assert names == {
        "DISCORD_CHECK_IGNORE": str(dotenv),
        "DISCORD_MINE_A": str(dotenv),
        "DISCORD_TOKEN": "the environment",
    }
    ignored = preflight.ignored_patterns({}, dotenv)
    assert ignored == ["DISCORD_MINE_*", "DISCORD_OTHER"]
    names["DISCORD_WEBHOOK_GENRAL_FILE"] = "the environment"
    names["DISCORD_WEBHOOK_BILLING_FILE"] = "the environment"
    problems = preflight.variable_problems(names, (), ignored)
    assert len(problems) == 1
    assert "did you mean DISCORD_WEBHOOK_GENERAL_FILE?" in problems[0]
    assert preflight.machine_problems(None) == []
    assert preflight.machine_problems(Secret("redis://cache:6379/0")) == []
    refused = preflight.machine_problems(Secret(f"redis://:{PASSWORD}@c:1/0?db=x"))
    assert refused == [preflight.redis_url_refused(f"redis://:{PASSWORD}@c:1/0?db=x")]
    assert "Invalid value for 'db'" in refused[0]
    assert PASSWORD not in refused[0]
    monkeypatch.setitem(sys.modules, "redis", None)
    junk = tmp_path / "junk.pem"
    junk.write_text("no certificate here\n")
    monkeypatch.setenv("SSL_CERT_FILE", str(junk))
    redis_missing, certificates = preflight.machine_problems(Secret("redis://cache:6379/0"))
    assert "redis-py is not installed" in redis_missing
    assert f"SSL_CERT_FILE names {junk}, which holds no CA certificate" in certificates
