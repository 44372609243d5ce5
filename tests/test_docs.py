"""The documentation keeps up with the code: settings, CLI commands and options, links."""

from __future__ import annotations

import argparse
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from discord_logging.cli import build_parser
from discord_logging.settings import FIELD_NAMES

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
README = ROOT / "README.md"
CONFIGURATION = DOCS / "configuration.md"
ENV_EXAMPLE = ROOT / ".env.example"

_LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_FENCE = re.compile(r"^(```|~~~).*?^\1", re.MULTILINE | re.DOTALL)
_INLINE_CODE = re.compile(r"`[^`\n]*`")


def variable(field_name: str) -> str:
    """The environment variable documented for a setting."""
    if field_name == "webhooks":
        return "DISCORD_WEBHOOK_"
    return "DISCORD_" + field_name.upper()


def mentions_variable(text: str, name: str) -> bool:
    """Whether ``name`` occurs in ``text`` as a whole variable name (or a prefix ending in _)."""
    tail = "" if name.endswith("_") else r"(?![A-Z0-9_])"
    return re.search(r"(?<![A-Z0-9_])" + re.escape(name) + tail, text) is not None


def markdown_files() -> list[Path]:
    """README.md and every Markdown file under docs/."""
    return [README, *sorted(DOCS.rglob("*.md"))]


def all_markdown() -> str:
    """The text of README.md and docs/, joined."""
    return "\n".join(path.read_text(encoding="utf-8") for path in markdown_files())


def subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    """The subcommands registered on ``parser``, by name."""
    found: dict[str, argparse.ArgumentParser] = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            found.update(action.choices)
    return found


def commands(
    parser: argparse.ArgumentParser, prefix: str = "discord-logging"
) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    """Every command and nested action, as ("discord-logging dead-letters list", parser)."""
    for name, sub in subparsers(parser).items():
        path = f"{prefix} {name}"
        yield path, sub
        yield from commands(sub, path)


def long_options(parser: argparse.ArgumentParser) -> list[str]:
    """The ``--long`` option strings of one command."""
    return [
        option
        for action in parser._actions
        for option in action.option_strings
        if option.startswith("--")
    ]


def relative_links(path: Path) -> list[str]:
    """Link targets in a Markdown file that are not URLs or in-page anchors (code excluded)."""
    text = _INLINE_CODE.sub("", _FENCE.sub("", path.read_text(encoding="utf-8")))
    targets = []
    for target in _LINK.findall(text):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.IGNORECASE) or target.startswith("#"):
            continue
        targets.append(target)
    return targets


SETTINGS = sorted(FIELD_NAMES)
COMMANDS = list(commands(build_parser()))


@pytest.mark.parametrize("field_name", SETTINGS)
def test_every_setting_is_in_the_configuration_reference(field_name: str) -> None:
    """Each DiscordSettings field's DISCORD_ variable appears in docs/configuration.md."""
    text = CONFIGURATION.read_text(encoding="utf-8")
    assert mentions_variable(text, variable(field_name)), variable(field_name)


@pytest.mark.parametrize("field_name", SETTINGS)
def test_every_setting_is_in_env_example(field_name: str) -> None:
    """Each DiscordSettings field's DISCORD_ variable appears in .env.example."""
    text = ENV_EXAMPLE.read_text(encoding="utf-8")
    assert mentions_variable(text, variable(field_name)), variable(field_name)


def test_the_cli_has_commands_to_document() -> None:
    """The parser walk finds every module in COMMANDS (guards the tests below)."""
    from discord_logging.cli import COMMANDS as MODULES

    top_level = subparsers(build_parser())
    assert len(top_level) == len(MODULES)


@pytest.mark.parametrize(("command", "parser"), COMMANDS, ids=[c for c, _ in COMMANDS])
def test_every_command_is_documented(command: str, parser: argparse.ArgumentParser) -> None:
    """Each subcommand (and dead-letters action) is named in README.md or docs/."""
    assert command in all_markdown(), command


@pytest.mark.parametrize(("command", "parser"), COMMANDS, ids=[c for c, _ in COMMANDS])
def test_every_long_option_is_documented(command: str, parser: argparse.ArgumentParser) -> None:
    """Each --option of each command appears in README.md or docs/."""
    text = all_markdown()
    missing = [
        option
        for option in long_options(parser)
        if re.search(r"(?<![\w-])" + re.escape(option) + r"(?![\w-])", text) is None
    ]
    assert not missing, f"{command}: {missing}"


@pytest.mark.parametrize("path", markdown_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_point_to_existing_files(path: Path) -> None:
    """Every relative link in README.md and docs/*.md resolves to a file or directory."""
    broken = [
        target
        for target in relative_links(path)
        if not (path.parent / target.split("#", 1)[0]).exists()
    ]
    assert not broken, f"{path.relative_to(ROOT)}: {broken}"


def configuration_rows() -> dict[str, str]:
    """The "All settings" table of configuration.md: variable -> keyword ("—" for none)."""
    rows: dict[str, str] = {}
    for line in CONFIGURATION.read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 2 and cells[0].startswith("`DISCORD_"):
            rows[cells[0].strip("`")] = cells[1].strip("`")
    return rows


def handler_keywords() -> set[str]:
    """The keyword parameters of ``DiscordHandler.__init__`` (inspect)."""
    import inspect

    from discord_logging import DiscordHandler

    parameters = inspect.signature(DiscordHandler.__init__).parameters.values()
    return {p.name for p in parameters if p.kind is inspect.Parameter.KEYWORD_ONLY}


def test_configuration_keyword_column_matches_the_handler_signature() -> None:
    """Every keyword the table names is a DiscordHandler parameter, and every setting the
    handler takes as a keyword is listed with it (not as environment-only "—")."""
    rows = configuration_rows()
    keywords = handler_keywords()
    assert rows, "the settings table was not found"
    named = {kw for kw in rows.values() if kw != "—"}
    assert named - keywords == set(), "documented keywords DiscordHandler does not take"
    for field_name in SETTINGS:
        key = "DISCORD_WEBHOOK_<TYPE>" if field_name == "webhooks" else variable(field_name)
        assert key in rows, key
        keyword = "timeout" if field_name == "timeout_seconds" else field_name
        expected = keyword if keyword in keywords else "—"
        assert rows[key] == expected, f"{key}: documented {rows[key]!r}, handler: {expected!r}"


def test_readme_async_snippet_closes_its_client() -> None:
    """The README's Notifier one-liner uses `async with`, so no client is left open."""
    text = README.read_text(encoding="utf-8")
    uses = re.findall(r"[^\n]*(?<![A-Za-z])Notifier\(\)[^\n]*", text)
    assert uses
    assert all("async with Notifier() as" in line for line in uses), uses


def test_readme_quick_start_works_without_installing_into_the_system_python() -> None:
    """The first command avoids what PEP 668 refuses, installs only runtime dependencies for
    the demo, and .ci/run runs the README's test command."""
    text = README.read_text(encoding="utf-8")
    block = text[text.index("## Quick start") :].split("```bash", 1)[1].split("```", 1)[0]
    first, second = [line.split("  #")[0].strip() for line in block.strip().splitlines()][:2]
    assert "--target" in first or "venv" in first
    assert "pip install --user" not in first
    assert "--break-system-packages" not in first
    assert "--no-default-groups" in first
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    test_command = second.split("uv ", 1)[1]  # "run pytest"
    assert f"uv {test_command}".split()[:3] == ["uv", "run", "pytest"]
    assert "uv run --no-sync pytest" in ci
    assert "## Quick start" in ci  # CI reads and runs the README's first command


def test_distribution_name_install_and_the_import_name_clash() -> None:
    """The distribution is not the taken `discord-logging`; README's Install uses its name;
    the command and import names stay; troubleshooting covers the clash; no index host."""
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    name = project["name"]
    assert name != "discord-logging"
    assert project["scripts"] == {"discord-logging": "discord_logging.cli:main"}
    readme = README.read_text(encoding="utf-8")
    install = readme[readme.index("## Install") : readme.index("## Quick start")]
    assert f"pip install {name}" in install
    assert "uv add" in install
    assert "pip install /path/to/clone" in install
    trouble = (DOCS / "troubleshooting.md").read_text(encoding="utf-8")
    assert "## `import discord_logging` finds another project" in trouble
    for other in ("discord-logging", "discord-logging-fork1", "aiohttp", "packages_distributions"):
        assert other in trouble
    # The index's host is spelled in parts: the repository names no package index host.
    index_host = ".".join(("pypi", "org"))
    for path in markdown_files():
        assert index_host not in path.read_text(encoding="utf-8").lower(), path
