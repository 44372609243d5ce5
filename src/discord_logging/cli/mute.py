"""``discord-logging mute``, ``unmute`` and ``mutes``: windows during which the fleet keeps
records of an alert type from Discord (docs/architecture.md, "Mutes, quiet hours and
resolving an incident"). They read and change the shared table: ``mutes.sqlite3`` in the
store directory, or Redis when ``DISCORD_REDIS_URL`` is set. No webhook needs to be set."""

from __future__ import annotations

import argparse
import contextlib
import os
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Final

from ..muting import Mute
from ..muting import control as muting
from ..muting.table import FILE_NAME, MuteTable, open_table
from . import _common as common
from .output import emit_json, say, table

REDIS_VARIABLE = "DISCORD_REDIS_URL"


def register(commands: Any) -> None:
    """Add ``mute``."""
    parser = commands.add_parser(
        "mute",
        parents=[common.store_parent()],
        help="mute an alert type (or all) for a while, in every process of the fleet",
        description="Keep records of TYPE (types separated by commas, or all) from Discord "
        "for DURATION, in every process using this store (or Redis) within about 2 s. Muted "
        "records are written to the history as 'muted'; when the mute ends one silent "
        "message says what was muted. CRITICAL records pass unless --all-levels.",
        epilog="DURATION: 30s, 15m, 2h, 1d, 1w. Exit codes: 0 ok, 1 failed (store or Redis "
        "unusable), 2 usage error.",
    )
    parser.add_argument("scope", metavar="TYPE", help="an alert type, types with commas, or all")
    parser.add_argument("--for", dest="duration", metavar="DURATION", required=True)
    parser.add_argument("--reason", default="", help="why (shown in mutes and the summary)")
    parser.add_argument("--match", default="", help="mute only records whose message has TEXT")
    parser.add_argument("--all-levels", action="store_true", help="mute CRITICAL records too")
    common.json_option(parser)
    parser.set_defaults(run=run_mute)


def register_unmute(commands: Any) -> None:
    """Add ``unmute``."""
    parser = commands.add_parser(
        "unmute",
        parents=[common.store_parent()],
        help="end mutes now (by id, alert type, or all)",
        description="End the active mutes SELECTOR names: a mute id (or its start), an alert "
        "type, or all. Their summaries follow within a few seconds.",
        epilog="Exit codes: 0 ok, 1 no active mute matched (or the store is unusable), 2 usage.",
    )
    parser.add_argument("selector", metavar="ID|TYPE|all")
    common.json_option(parser)
    parser.set_defaults(run=run_unmute)


def register_list(commands: Any) -> None:
    """Add ``mutes``."""
    parser = commands.add_parser(
        "mutes",
        parents=[common.store_parent()],
        help="list the active mutes",
        description="List the mutes that hold now, the soonest to end first.",
        epilog="Exit codes: 0 ok, 1 failed (store or Redis unusable), 2 usage error.",
    )
    common.json_option(parser)
    parser.set_defaults(run=run_list)


# The CLI registers one command per entry (cli.COMMANDS): these two live here beside ``mute``.
UNMUTE: Final = SimpleNamespace(register=register_unmute)
MUTES: Final = SimpleNamespace(register=register_list)


def redis_url() -> str | None:
    """DISCORD_REDIS_URL from the environment (or ``.env``), if set."""
    for key, value in os.environ.items():
        if key.upper() == REDIS_VARIABLE and value.strip():
            return value.strip()
    dotenv = Path(".env")
    if dotenv.is_file():
        from dotenv import dotenv_values

        for key, found in dotenv_values(dotenv).items():
            if key.upper() == REDIS_VARIABLE and found and found.strip():
                return found.strip()
    return None


def _configured_here() -> set[str]:
    """The alert types this environment configures, here or in .env: its webhooks
    (DISCORD_WEBHOOK_*) and the types DISCORD_ROUTES leads to, as a handler's settings have
    them (``muting.control.configured_types``). A mute naming a near miss of one is refused as
    a typo; a DISCORD_ROUTES that cannot be read adds nothing (``check`` says what is wrong)."""
    from ..config.checks import parse_routes
    from ..config.sources import dotenv, environment, gather, gather_webhooks

    places = [environment(), dotenv()]
    known = set(gather_webhooks(None, places))
    routes = gather(["routes"], {}, places).get("routes")
    if routes is not None:
        with contextlib.suppress(ValueError):
            known |= set(parse_routes(routes.value).values())
    return known


def _table(args: argparse.Namespace) -> MuteTable:
    return open_table(common.store_path(args), redis_url())


def active(path: Path, url: str | None = None) -> list[Mute]:
    """The active mutes for ``check`` and ``stats``, without creating a table that is not
    there."""
    if not url and not (path / FILE_NAME).exists():
        return []
    found = open_table(path, url)
    try:
        return muting.active_mutes(found)
    finally:
        found.close()


def as_dict(mute: Mute, now: float) -> dict[str, Any]:
    return {
        "id": mute.id,
        "scope": mute.scope,
        "start": common.utc(mute.start),
        "end": common.utc(mute.end),
        "seconds_left": max(0, round(mute.end - now)),
        "reason": mute.reason,
        "match": mute.match,
        "all_levels": mute.all_levels,
        "by": mute.by,
    }


def print_mutes(mutes: list[Mute], now: float) -> None:
    """The table of ``mutes`` (or one line saying there is none)."""
    if not mutes:
        say("No mute is active.")
        return
    rows = [
        (
            m.id,
            m.scope,
            common.utc(m.end),
            _left(m.end - now),
            "all" if m.all_levels else "< CRITICAL",
            m.match or "-",
            common.cut(m.reason or "-", 30),
            m.by,
        )
        for m in mutes
    ]
    say(table(rows, ["id", "types", "until", "left", "levels", "match", "reason", "by"]))


def _left(seconds: float) -> str:
    minutes = max(0, round(seconds / 60))
    return f"{minutes // 60}h{minutes % 60:02d}m" if minutes >= 60 else f"{minutes}m"


@common.guarded
def run_mute(args: argparse.Namespace) -> int:
    """Set a mute."""
    try:
        made = muting.new_mute(
            args.scope,
            args.duration,
            reason=args.reason,
            match=args.match,
            all_levels=args.all_levels,
            known=_configured_here(),
        )
    except ValueError as exc:
        common.error(f"mute: {exc}")
        return 2
    shared = _table(args)
    try:
        shared.add(made)
    finally:
        shared.close()
    if args.json:
        emit_json(as_dict(made, time.time()))
        return 0
    levels = "every level" if made.all_levels else "CRITICAL records still pass"
    say(f"Muted {made.describe()} until {common.utc(made.end)} (id {made.id}); {levels}.")
    return 0


@common.guarded
def run_unmute(args: argparse.Namespace) -> int:
    """End mutes."""
    shared = _table(args)
    try:
        ended = muting.unmute(shared, args.selector)
    finally:
        shared.close()
    if args.json:
        emit_json({"ended": [m.id for m in ended]})
    elif ended:
        say("Ended: " + ", ".join(f"{m.id} ({m.scope})" for m in ended) + ".")
    else:
        common.error(f"no active mute matches {args.selector!r}: see discord-logging mutes")
    return 0 if ended else 1


@common.guarded
def run_list(args: argparse.Namespace) -> int:
    """List the active mutes."""
    now = time.time()
    shared = _table(args)
    try:
        mutes = muting.active_mutes(shared, now)
    finally:
        shared.close()
    if args.json:
        emit_json([as_dict(m, now) for m in mutes])
    else:
        print_mutes(mutes, now)
    return 0
