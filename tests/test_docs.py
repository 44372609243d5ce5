"""The documentation keeps up with the code: settings, CLI commands and options, links."""

from __future__ import annotations

import argparse
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from discord_logging.cli import build_parser
from discord_logging.settings import DiscordSettings

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


SETTINGS = sorted(DiscordSettings.model_fields)
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
