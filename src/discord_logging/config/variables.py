"""``DISCORD_*`` variables that no setting reads: a typo (``DISCORD_RATELIMIT``) would silently
change nothing, and a misspelt webhook variable (``DISCORD_WEBHOOK_ERORRS``) would send its
records to ``general``. Told by ``discord-logging check`` and, once per process, by the
handler when it is created. Light: read on the caller's thread."""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Final

from ..alerts import ALIASES, AlertType
from ..wording import closest

# The setting names (settings.py says the same; tests/test_cli_preflight.py checks they agree).
ENV_PREFIX: Final = "DISCORD_"
WEBHOOK_PREFIX: Final = "DISCORD_WEBHOOK_"
FILE_SUFFIX: Final = "_FILE"
# Names (or shell-style patterns) that `check` does not report, comma-separated: read by
# `check` alone, from the environment or .env.
IGNORE_VARIABLE: Final = "DISCORD_CHECK_IGNORE"
# Variables other programs commonly set with the same prefix (bots, OAuth2 and interactions
# apps, the Game SDK): never taken for typos of ours. docs/configuration.md lists them; keep
# them clear of every setting's name (tests/test_cli_preflight.py checks).
OTHER_TOOLS: Final = (
    "DISCORD_TOKEN",  # discord.py, hikari, nextcord, disnake, Red bots
    "DISCORD_BOT_*",  # DISCORD_BOT_TOKEN, DISCORD_BOT_PREFIX, ...
    "DISCORD_*_ID",  # DISCORD_CLIENT_ID, _APPLICATION_ID, _GUILD_ID, _CHANNEL_ID, _OWNER_ID, ...
    "DISCORD_*_IDS",
    "DISCORD_CLIENT_SECRET",  # OAuth2 apps (Flask-Discord, Auth.js, django-allauth)
    "DISCORD_REDIRECT_URI",
    "DISCORD_OAUTH*",
    "DISCORD_PUBLIC_KEY",  # interactions endpoints verify requests with it
    "DISCORD_GUILD",
    "DISCORD_PREFIX",
    "DISCORD_COMMAND_PREFIX",
)

DOTENV: Final = Path(".env")


def known_variables() -> set[str]:
    """Every ``DISCORD_*`` variable a setting reads, webhooks aside (``_FILE`` forms and the
    check's own ``DISCORD_CHECK_IGNORE`` included)."""
    from ..settings import FIELD_NAMES, env_name
    from .sources import SECRET_FILE_SETTINGS

    names = {env_name(name) for name in FIELD_NAMES if name != "webhooks"}
    names |= {env_name(name) + FILE_SUFFIX for name in SECRET_FILE_SETTINGS}
    return names | {IGNORE_VARIABLE}


def builtin_webhook_variables() -> set[str]:
    """``DISCORD_WEBHOOK_GENERAL`` ... : each built-in type by its name and by its documented
    alias (``DISCORD_WEBHOOK_ERROR`` and ``DISCORD_WEBHOOK_ERRORS``)."""
    names = {WEBHOOK_PREFIX + kind.value.upper() for kind in AlertType}
    return names | {WEBHOOK_PREFIX + alias.upper() for alias in ALIASES}


def configured_variables(
    environ: Mapping[str, str] | None = None, dotenv: Path = DOTENV
) -> dict[str, str]:
    """``DISCORD_*`` names set in the environment or the ``.env`` file -> where they were set."""
    return {name: where for name, (where, _) in _configured(environ, dotenv).items()}


def ignored_patterns(environ: Mapping[str, str] | None = None, dotenv: Path = DOTENV) -> list[str]:
    """The names and patterns ``DISCORD_CHECK_IGNORE`` lists (the environment wins over .env)."""
    _, value = _configured(environ, dotenv).get(IGNORE_VARIABLE, ("", ""))
    return [item.strip().upper() for item in value.replace(" ", ",").split(",") if item.strip()]


def _configured(environ: Mapping[str, str] | None, dotenv: Path) -> dict[str, tuple[str, str]]:
    """``DISCORD_*`` names -> (where set, value); the environment wins over ``.env``."""
    from .sources import dotenv as read_dotenv

    found: dict[str, tuple[str, str]] = {}
    for key, value in read_dotenv(dotenv).values.items():
        found[key] = (str(dotenv), value or "")
    for key, value in (os.environ if environ is None else environ).items():
        if key.upper().startswith(ENV_PREFIX):
            found[key.upper()] = ("the environment", value)
    return found


def _matches(name: str, patterns: Iterable[str]) -> bool:
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in patterns)


def variable_problems(
    names: Mapping[str, str], intended_types: Iterable[str] = (), ignored: Iterable[str] = ()
) -> list[str]:
    """One sentence per variable that nothing reads, with the likely fix.

    A ``DISCORD_WEBHOOK_<NAME>`` (or ``..._<NAME>_FILE``) is a custom alert type, so it is
    valid; it is taken for a typo only when ``<NAME>`` is close to a built-in type's variable
    and no route or mention names that custom type (``intended_types``). Other programs'
    variables (:data:`OTHER_TOOLS`) and those ``ignored`` (``DISCORD_CHECK_IGNORE``) are left
    alone."""
    known = known_variables()
    builtin = builtin_webhook_variables()
    intended = {WEBHOOK_PREFIX + kind.upper() for kind in intended_types}
    ignored = list(ignored)
    problems = []
    for name, where in sorted(names.items()):
        if name in known or _matches(name, ignored):
            continue
        if name.startswith(WEBHOOK_PREFIX):
            problem = _webhook_problem(name, where, builtin, intended)
            if problem:
                problems.append(problem)
            continue
        if _matches(name, OTHER_TOOLS):
            continue
        close = _closest(name, known | builtin, ENV_PREFIX)
        hint = (
            f"did you mean {close}?"
            if close
            else f"the variables are listed in docs/configuration.md (if another program "
            f"reads it, name it in {IGNORE_VARIABLE})"
        )
        problems.append(f"{name} (in {where}) is not a discord-logging setting: {hint}")
    return problems


def _webhook_problem(name: str, where: str, builtin: set[str], intended: set[str]) -> str | None:
    """A custom alert type's webhook whose name looks like a misspelt built-in one."""
    stem = name.removesuffix(FILE_SUFFIX) if name != WEBHOOK_PREFIX + "FILE" else name
    if stem in builtin or stem in intended:
        return None
    close = _closest(stem, builtin, WEBHOOK_PREFIX)
    if not close:
        return None
    kind = stem[len(WEBHOOK_PREFIX) :].lower()
    return (
        f"{name} (in {where}) defines a custom alert type {kind!r} that nothing routes to; "
        f"did you mean {close}{name[len(stem) :]}? Rename it, or route records to {kind!r} "
        f"with DISCORD_ROUTES if the custom type is meant."
    )


def _closest(name: str, candidates: set[str], prefix: str) -> str | None:
    """The candidate ``name`` is most likely a typo of: close after the shared prefix, or a
    shortened form (DISCORD_TIMEOUT for DISCORD_TIMEOUT_SECONDS)."""
    tails = {c[len(prefix) :]: c for c in candidates if c.startswith(prefix)}
    tail = name[len(prefix) :]
    close = closest(tail, tails)
    if close:
        return tails[close]
    longer = sorted(c for t, c in tails.items() if t.startswith(tail + "_"))
    return longer[0] if longer else None
