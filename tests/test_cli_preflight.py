"""``discord-logging check`` as a preflight: typos, no webhook and an unusable store exit 3,
naming the variable and the fix; the store path it resolved is printed."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
from conftest import WEBHOOK
from entry_point import run

from discord_logging.cli import preflight

TOKEN = WEBHOOK.rsplit("/", 1)[1]


@pytest.mark.slow  # a real process
@pytest.mark.parametrize(
    ("variable", "fix"),
    [
        ("DISCORD_WEBHOOK_GENRAL", "did you mean DISCORD_WEBHOOK_GENERAL?"),
        ("DISCORD_WEBHOOK_EROR", "did you mean DISCORD_WEBHOOK_ERROR"),
        ("DISCORD_WEBHOOK_CRITCAL", "did you mean DISCORD_WEBHOOK_CRITICAL?"),
        ("DISCORD_RATE_LIMT", "did you mean DISCORD_RATE_LIMIT?"),
        ("DISCORD_STORE_PATHS", "did you mean DISCORD_STORE_PATH?"),
        ("DISCORD_TIMEOUT", "did you mean DISCORD_TIMEOUT_SECONDS?"),
        ("DISCORD_SOMETHING_ELSE", "docs/configuration.md"),
    ],
)
def test_unknown_variable_in_the_environment_fails_check(variable: str, fix: str) -> None:
    """A DISCORD_* name nothing reads exits 3 naming it and the likely fix."""
    value = WEBHOOK if variable.startswith("DISCORD_WEBHOOK_") else "3"
    done = run("check", env={"DISCORD_WEBHOOK_GENERAL": WEBHOOK, variable: value})
    assert done.returncode == 3, done.stdout
    assert variable in done.stderr
    assert fix in done.stderr
    assert "Configuration OK" not in done.stdout
    assert TOKEN not in done.stdout + done.stderr


@pytest.mark.slow  # a real process
def test_unknown_variable_in_dotenv_fails_check(tmp_path: Path) -> None:
    """A typo in .env is found too, and the message says it came from .env."""
    (tmp_path / ".env").write_text(f"DISCORD_WEBHOOK_GENERAL={WEBHOOK}\nDISCORD_RATE_LIMT=3\n")
    done = run("check")
    assert done.returncode == 3
    assert "DISCORD_RATE_LIMT (in .env)" in done.stderr
    assert "did you mean DISCORD_RATE_LIMIT?" in done.stderr


@pytest.mark.slow  # a real process
def test_only_a_misspelt_webhook_says_both_problems() -> None:
    """With the only webhook misspelt, check names the typo and that no webhook is set."""
    done = run("check", env={"DISCORD_WEBHOK_GENERAL": WEBHOOK})
    assert done.returncode == 3
    assert "did you mean DISCORD_WEBHOOK_GENERAL?" in done.stderr
    assert "no Discord webhook is configured" in done.stderr


@pytest.mark.slow  # a real process
def test_no_webhook_at_all_fails_check() -> None:
    """No webhook: exit 3 and the variable to set."""
    done = run("check")
    assert done.returncode == 3
    assert "set DISCORD_WEBHOOK_GENERAL" in done.stderr


@pytest.mark.slow  # a real process
def test_routed_custom_type_is_not_a_typo() -> None:
    """A custom webhook that a route names is meant: check passes."""
    done = run(
        "check",
        env={
            "DISCORD_WEBHOOK_GENERAL": WEBHOOK,
            "DISCORD_WEBHOOK_GENERALS": WEBHOOK,
            "DISCORD_ROUTES": "app.x=generals",
        },
    )
    assert done.returncode == 0, done.stderr


def test_custom_types_far_from_builtin_names_pass() -> None:
    """DISCORD_WEBHOOK_BILLING is a custom type, not a typo; every setting name is known."""
    names = {name: "x" for name in preflight.known_variables()}
    names["DISCORD_WEBHOOK_BILLING"] = "x"
    names["DISCORD_WEBHOOK_ERRORS"] = "x"
    assert preflight.variable_problems(names) == []


def _under_a_file(tmp: Path) -> Path:
    (tmp / "plain").write_text("x")
    return tmp / "plain" / "store"


def _a_file(tmp: Path) -> Path:
    (tmp / "plain").write_text("x")
    return tmp / "plain"


@pytest.mark.slow  # a real process
@pytest.mark.parametrize(
    ("make", "why"),
    [
        (_under_a_file, "Not a directory"),
        (_a_file, "not a directory"),
        (lambda tmp: Path("/proc/discord-logging-check/store"), "No such file"),
        (lambda tmp: Path("/sys/discord-logging-check"), "not permitted"),
    ],
    ids=["under-a-regular-file", "a-regular-file", "under-proc", "under-sys"],
)
def test_store_that_cannot_be_created_fails_check(make: object, why: str, tmp_path: Path) -> None:
    """check tries to create and write the store; where it cannot, exit 3 with the reason."""
    path = make(tmp_path)  # type: ignore[operator]
    done = run("check", env={"DISCORD_WEBHOOK_GENERAL": WEBHOOK, "DISCORD_STORE_PATH": str(path)})
    assert done.returncode == 3, done.stdout
    assert f"the store at {path} cannot be created and written" in done.stderr
    assert why in done.stderr
    assert "DISCORD_STORE_PATH" in done.stderr


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only directories")
def test_store_in_a_read_only_directory_fails_check(tmp_path: Path) -> None:
    """A store inside a directory this user may not write fails the preflight."""
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    try:
        assert "Permission denied" in (preflight.store_problem(locked / "store") or "")
    finally:
        locked.chmod(0o700)


@pytest.mark.slow  # a real process
def test_check_prints_the_store_it_resolved_and_leaves_no_probe(tmp_path: Path) -> None:
    """The resolved store path is printed (text and JSON); the check leaves no trace: the
    directories it created to try are removed, an existing store keeps no probe file."""
    store = tmp_path / "deep" / "store"
    done = run("check", env={"DISCORD_WEBHOOK_GENERAL": WEBHOOK, "DISCORD_STORE_PATH": str(store)})
    assert done.returncode == 0, done.stderr
    assert f"Store: {store}" in done.stdout
    assert not (tmp_path / "deep").exists()
    store.mkdir(parents=True)
    assert (
        run(
            "check", env={"DISCORD_WEBHOOK_GENERAL": WEBHOOK, "DISCORD_STORE_PATH": str(store)}
        ).returncode
        == 0
    )
    assert list(store.iterdir()) == []
    data = json.loads(run("--json", "check", env={"DISCORD_WEBHOOK_GENERAL": WEBHOOK}).stdout)
    assert data["store"] == os.environ["DISCORD_STORE_PATH"]


@pytest.mark.slow  # a real process
def test_check_store_option_before_or_after_the_command(tmp_path: Path) -> None:
    """--store works before and after the command name and wins over DISCORD_STORE_PATH."""
    env = {"DISCORD_WEBHOOK_GENERAL": WEBHOOK}
    for argv in (
        ["--store", str(tmp_path / "a"), "check"],
        ["check", "--store", str(tmp_path / "b")],
    ):
        done = run(*argv, env=env)
        assert done.returncode == 0, done.stderr
        assert f"Store: {argv[1] if argv[0] == '--store' else argv[2]}" in done.stdout


@pytest.mark.slow  # a real process
def test_check_json_lists_problems() -> None:
    """--json reports ok false with every problem (exit 3)."""
    done = run(
        "check", "--json", env={"DISCORD_WEBHOOK_GENERAL": WEBHOOK, "DISCORD_QUEUE_SIZ": "1"}
    )
    assert done.returncode == 3
    data = json.loads(done.stdout)
    assert data["ok"] is False
    assert any("did you mean DISCORD_QUEUE_SIZE?" in p for p in data["problems"])


def test_preflight_names_agree_with_the_settings() -> None:
    """The prefixes the light preflight module keeps are the settings' own."""
    from discord_logging import settings

    assert (preflight.ENV_PREFIX, preflight.WEBHOOK_PREFIX) == (
        settings.ENV_PREFIX,
        settings.WEBHOOK_PREFIX,
    )


@pytest.mark.slow  # a real process
def test_untouched_env_example_is_answered_as_the_placeholder(tmp_path: Path) -> None:
    """Copying .env.example to .env unchanged: check says to paste the real URL."""
    example = Path(__file__).resolve().parent.parent / ".env.example"
    (tmp_path / ".env").write_text(example.read_text())
    done = run("check")
    assert done.returncode == 3
    # Named with the file and line it was given on.
    assert re.search(
        r"DISCORD_WEBHOOK_GENERAL \(\.env line \d+\): is still the placeholder", done.stderr
    )
    assert "paste your webhook URL" in done.stderr
