"""``discord-logging check``: validate the configuration and show where each alert type goes."""

from __future__ import annotations

import argparse
import sys
import textwrap
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

from ..errors import ConfigurationError
from ..metrics import wiring as metrics_wiring
from ..wording import counted
from . import _common as common
from . import preflight
from .output import emit_json, say, table

if TYPE_CHECKING:
    from ..settings import DiscordSettings

SCREEN: Final = 100  # columns the settings table fits in


def register(commands: Any) -> None:
    """Add the ``check`` subcommand."""
    parser = commands.add_parser(
        "check",
        help="validate the configuration and print the route table",
        description="Validate DISCORD_* settings and templates, flag variables nothing reads "
        "(typos: did you mean ...?), try creating and writing the store; print the route table "
        "(tokens redacted). With --ping, also post a test message to every webhook.",
        epilog="Exit codes: 0 ok, 1 a ping failed, 2 usage error, 3 invalid configuration "
        "(an unknown DISCORD_* variable, no webhook, an unwritable store included).",
        parents=[common.store_parent()],
    )
    common.json_option(parser)
    parser.add_argument(
        "--ping",
        action="store_true",
        help="also send one test notification to each configured webhook (alert type = the "
        "webhook's name) and show the outcome, and show each webhook's channel (a GET that "
        "posts nothing), warning when several alert types share one; exit 1 if any fails",
    )
    parser.set_defaults(run=run)


def describe(settings: DiscordSettings) -> dict[str, Any]:
    """The checked configuration as plain data, tokens redacted."""
    from ..capture.routing import Router
    from ..render.templating import EmbedRenderer

    urls = settings.webhook_urls
    router = Router(settings.routes, urls)
    # The same templates the handler validates at start-up: routed and mentioned types too,
    # and the link buttons' templates.
    EmbedRenderer(
        app_name=settings.app_name, templates_dir=settings.templates_dir, buttons=settings.buttons
    ).validate([*urls, *settings.routes.values(), *settings.mentions])
    return {
        "webhooks": {name: url.redacted for name, url in sorted(urls.items())},
        "routes": [
            {"alert_type": kind, "webhook": carrier, "fallback": carrier not in (None, kind)}
            for kind, carrier in router.table()
        ],
        "logger_rules": [{"logger": prefix, "alert_type": kind} for prefix, kind in router.rules],
        "settings": settings.as_dict(exclude=frozenset({"webhooks"})),
    }


def problems_of(args: argparse.Namespace) -> tuple[DiscordSettings | None, list[str]]:
    """Load the settings and run the preflight; every problem found, not just the first."""
    from ..settings import load_settings

    problems: list[str] = []
    settings: DiscordSettings | None = None
    try:
        settings = load_settings()
    except ConfigurationError as exc:
        problems.append(str(exc))
    intended = [*settings.routes.values(), *settings.mentions] if settings else []
    problems[:0] = preflight.variable_problems(
        preflight.configured_variables(), intended, preflight.ignored_patterns()
    )
    if settings is not None:
        problems += preflight.machine_problems(settings.redis_url)
        trouble = preflight.store_problem(common.store_path(args, settings))
        if trouble:
            problems.append(trouble)
    return settings, problems


def run(args: argparse.Namespace) -> int:
    """Print the configuration; every problem found exits 3, naming the variable and the fix."""
    from . import send
    from .channel_report import channel_report

    settings, problems = problems_of(args)
    if problems or settings is None:
        if args.json:
            emit_json({"ok": False, "problems": problems})
        for problem in problems:
            say(f"discord-logging: {problem}", sys.stderr)
        return 3
    info = describe(settings)
    info["store"] = str(common.store_path(args, settings))
    info["metrics"] = metrics_wiring()
    from ..store._damage import damaged_parts  # the store package: not for --help

    info["damaged"] = [str(p) for p in damaged_parts(common.store_path(args, settings))]
    info["mutes"] = _mutes(args, settings)
    if args.json:
        pings = send.ping(settings) if args.ping else []
        failed = any(not p.result.ok for p in pings)
        if args.ping:
            info["ping"] = [
                {"webhook": p.webhook, "forum_learned": p.forum_learned, **p.result.to_dict()}
                for p in pings
            ]
            info["channels"] = channel_report(
                settings.webhook_urls, timeout=settings.timeout_seconds
            )
        emit_json({"ok": not failed, **info})
        return 1 if failed else 0
    say("Configuration OK.\n")
    say(table(sorted(info["webhooks"].items()), ["webhook", "url"]))
    rows = []
    for route in info["routes"]:
        target = route["webhook"] or "(none: not delivered)"
        rows.append((route["alert_type"], target + (" (fallback)" if route["fallback"] else "")))
    say("")
    say(table(rows, ["alert type", "goes to webhook"]))
    if info["logger_rules"]:
        say("")
        say(
            table(
                [(r["logger"], r["alert_type"]) for r in info["logger_rules"]],
                ["logger", "alert type"],
            )
        )
    say("")
    say(table(setting_rows(info["settings"]), ["setting", "value"]))
    say(f"\nStore: {info['store']} (created and written: OK)")
    say(f"Metrics: {info['metrics']}")
    for part in info["damaged"]:
        say(f"  damaged and set aside (look at it, then delete it): {part}")
    for found in info["mutes"]:
        say(f"Muted: {found['scope']} until {found['end']} (id {found['id']}) {found['reason']}")
    if not args.ping:
        return 0
    channels = channel_report(settings.webhook_urls, timeout=settings.timeout_seconds)
    rows = [
        (name, found.get("channel_id") or f"unknown ({found.get('error')})")
        for name, found in channels["webhooks"].items()
    ]
    say("")
    say(table(rows, ["webhook", "channel"]))
    for shared in channels["shared_channels"]:
        say(
            f"Note: {', '.join(shared['alert_types'])} post into one channel "
            f"({shared['channel_id']}): they share its "
            f"{counted(settings.rate_limit, 'message')} a minute."
        )
    say("\nPinging every webhook...")
    pings = send.ping(settings)
    send.print_pings(pings)
    return 1 if any(not p.result.ok for p in pings) else 0


def _mutes(args: argparse.Namespace, settings: DiscordSettings) -> list[dict[str, Any]]:
    """The mutes that hold now (``discord-logging mutes``), or a line saying why not."""
    import time

    from . import mute

    url = settings.redis_url.get_secret_value() if settings.redis_url else None
    try:
        found = mute.active(common.store_path(args, settings), url)
    except Exception as exc:  # noqa: BLE001 - the check goes on; the mutes are unknown
        return [{"scope": "unknown", "end": "-", "id": "-", "reason": f"({type(exc).__name__})"}]
    now = time.time()
    return [mute.as_dict(m, now) for m in found]


def setting_rows(settings: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Each setting and its value as people read them, by name; a long value (a mapping such
    as ``silent``: ``general=True, error=False, ...``) wraps onto rows of its own, so that the
    table fits in 100 columns."""
    width = SCREEN - 2 - max(len("setting"), *(len(name) for name in settings))
    rows: list[tuple[str, str]] = []
    for name, value in sorted(settings.items()):
        text = (
            ", ".join(f"{key}={item}" for key, item in value.items())
            if isinstance(value, Mapping) and value
            else str(value)
        )
        lines = textwrap.wrap(text, width, break_long_words=False, break_on_hyphens=False)
        lines = lines or [""]
        rows += [(name, lines[0]), *(("", line) for line in lines[1:])]
    return rows
