"""Optional extras are named after this distribution, ``discord-alert-logging[...]``: the name
``discord-logging`` on the package index is an unrelated project, so ``discord-logging[redis]``
would install someone else's code."""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

import pytest

from discord_logging.coordination import require_redis_client
from discord_logging.errors import ConfigurationError

ROOT = Path(__file__).resolve().parent.parent
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
# `<name>[<extras>]` where the name is one of the project's own, or close to them. An extra
# starts with a letter: a PromQL range (`discord_logging_..._total[5m]`) is not one.
_EXTRA = re.compile(r"(?<![\w.-])(discord[-_][a-z0-9_.-]*)\[([a-z][a-z0-9_,\s-]*)\]")


def texts_users_read() -> dict[Path, str]:
    """The docs, README, .env.example, examples and every source file (error texts and
    docstrings): wherever an install command could be written."""
    paths = [ROOT / "README.md", ROOT / ".env.example"]
    paths += sorted((ROOT / "docs").rglob("*.md"))
    paths += sorted((ROOT / "examples").rglob("*"))
    paths += sorted((ROOT / "src").rglob("*.py"))
    return {p: p.read_text(encoding="utf-8") for p in paths if p.is_file() and p.suffix != ".pyc"}


def test_no_text_names_another_distributions_extra() -> None:
    """Every `name[extra]` in the docs and sources names this distribution and an extra it
    declares; none says discord-logging[...]."""
    extras = set(PROJECT["optional-dependencies"])
    found = []
    for path, text in texts_users_read().items():
        for match in _EXTRA.finditer(text):
            name, wanted = match.group(1), {e.strip() for e in match.group(2).split(",")}
            where = f"{path.relative_to(ROOT)}: {match.group(0)}"
            assert name == PROJECT["name"], f"{where} names another distribution"
            assert wanted <= extras, f"{where} names an extra pyproject.toml does not declare"
            found.append(where)
    assert found, "the redis extra is documented somewhere"


def test_the_pattern_catches_the_wrong_name() -> None:
    """The check above would catch the unrelated distribution's name."""
    match = _EXTRA.search('pip install "discord-logging[redis]"')
    assert match is not None
    assert match.group(1) != PROJECT["name"]


def test_missing_redis_error_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    """The start-up error for a missing redis-py says to install discord-alert-logging[redis]."""
    monkeypatch.setitem(sys.modules, "redis", None)
    with pytest.raises(ConfigurationError) as info:
        require_redis_client("redis://cache:6379/0")
    assert f'pip install "{PROJECT["name"]}[redis]"' in str(info.value)
    assert "discord-logging[" not in str(info.value)
