"""What ``discord-logging check`` catches before the application meets it: misspelt ``DISCORD_*``
variables (which the settings ignore, so a typo would silently send nothing) and a store that
cannot be created and written (which would keep dead letters only in memory)."""

from __future__ import annotations

import contextlib
import difflib
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Final

from ..alerts import ALIASES, AlertType

# The setting names: kept here (settings.py says the same) so that importing the CLI does not
# load pydantic; tests/test_cli_preflight.py checks the two agree.
ENV_PREFIX: Final = "DISCORD_"
WEBHOOK_PREFIX: Final = "DISCORD_WEBHOOK_"

DOTENV: Final = Path(".env")
# How close a name must be to a known one to be taken for a typo of it (difflib ratio).
_TYPO_CUTOFF: Final = 0.75


def known_variables() -> set[str]:
    """Every ``DISCORD_*`` variable a setting reads, webhooks aside."""
    from ..settings import DiscordSettings, env_name

    return {env_name(name) for name in DiscordSettings.model_fields if name != "webhooks"}


def builtin_webhook_variables() -> set[str]:
    """``DISCORD_WEBHOOK_GENERAL`` ... and the documented aliases (``DISCORD_WEBHOOK_ERRORS``)."""
    from ..settings import webhook_variable

    names = {webhook_variable(kind.value) for kind in AlertType}
    return names | {WEBHOOK_PREFIX + alias.upper() for alias in ALIASES}


def configured_variables(
    environ: Mapping[str, str] | None = None, dotenv: Path = DOTENV
) -> dict[str, str]:
    """``DISCORD_*`` names set in the environment or the ``.env`` file -> where they were set."""
    from dotenv import dotenv_values

    found: dict[str, str] = {}
    if dotenv.is_file():
        for key in dotenv_values(dotenv):
            if key.upper().startswith(ENV_PREFIX):
                found[key.upper()] = str(dotenv)
    for key in os.environ if environ is None else environ:
        if key.upper().startswith(ENV_PREFIX):
            found[key.upper()] = "the environment"
    return found


def variable_problems(names: Mapping[str, str], intended_types: Iterable[str] = ()) -> list[str]:
    """One sentence per variable that nothing reads, with the likely fix.

    A ``DISCORD_WEBHOOK_<NAME>`` is a custom alert type, so it is valid; it is taken for a typo
    only when ``<NAME>`` is close to a built-in type's variable and no route or mention names
    that custom type (``intended_types``)."""
    known = known_variables()
    builtin = builtin_webhook_variables()
    intended = {WEBHOOK_PREFIX + kind.upper() for kind in intended_types}
    problems = []
    for name, where in sorted(names.items()):
        if name in known or name in builtin or name in intended:
            continue
        if name.startswith(WEBHOOK_PREFIX):
            close = _closest(name, builtin, WEBHOOK_PREFIX)
            if close:
                kind = name[len(WEBHOOK_PREFIX) :].lower()
                problems.append(
                    f"{name} (in {where}) defines a custom alert type {kind!r} that nothing "
                    f"routes to; did you mean {close}? Rename it, or route records to "
                    f"{kind!r} with DISCORD_ROUTES if the custom type is meant."
                )
            continue
        close = _closest(name, known | builtin, ENV_PREFIX)
        hint = (
            f"did you mean {close}?"
            if close
            else "the variables are listed in docs/configuration.md"
        )
        problems.append(f"{name} (in {where}) is not a discord-logging setting: {hint}")
    return problems


def _closest(name: str, candidates: set[str], prefix: str) -> str | None:
    """The candidate ``name`` is most likely a typo of: close after the shared prefix, or a
    shortened form (DISCORD_TIMEOUT for DISCORD_TIMEOUT_SECONDS)."""
    tails = {c[len(prefix) :]: c for c in candidates if c.startswith(prefix)}
    tail = name[len(prefix) :]
    close = difflib.get_close_matches(tail, list(tails), n=1, cutoff=_TYPO_CUTOFF)
    if close:
        return tails[close[0]]
    longer = sorted(c for t, c in tails.items() if t.startswith(tail + "_"))
    return longer[0] if longer else None


def store_problem(path: Path) -> str | None:
    """Try what the handler will do with the store: create the directory (parents 0700) and
    write and delete a file in it. None when that worked, else what failed and the fix.
    Directories it created are removed again: a check leaves no trace."""
    from ..store._disk import private_directory

    probe = path / f".discord-logging-check-{os.getpid()}"
    created = [p for p in (path, *path.parents) if not p.exists()]
    try:
        if path.exists() and not path.is_dir():
            raise NotADirectoryError(20, "it is not a directory", str(path))
        private_directory(path)
        probe.write_bytes(b"check")
        probe.unlink()
    except OSError as exc:
        why = exc.strerror or str(exc)
        where = f" ({exc.filename})" if exc.filename and str(exc.filename) != str(path) else ""
        return (
            f"the store at {path} cannot be created and written: {why}{where}. Dead letters "
            "would be kept in memory only and lost at exit. Set DISCORD_STORE_PATH (or "
            "store_path=) to a directory this user can create and write."
        )
    finally:
        for directory in created:  # innermost first; only empty ones we made
            with contextlib.suppress(OSError):
                directory.rmdir()
    return None
