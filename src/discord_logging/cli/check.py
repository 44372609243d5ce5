"""``discord-logging check``: validate the configuration and show where each alert type goes."""

from __future__ import annotations

import argparse
from typing import Any

from ..rendering import EmbedRenderer
from ..routing import Router
from ..settings import DiscordSettings, load_settings
from .output import emit_json, say, table


def register(commands: Any) -> None:
    """Add the ``check`` subcommand."""
    parser = commands.add_parser(
        "check",
        help="validate the configuration and print the route table",
        description="Validate DISCORD_* settings and templates; print the route table "
        "(tokens redacted). Exit 3 when the configuration is invalid.",
    )
    parser.add_argument("--json", action="store_true", help="print JSON for scripts")
    parser.set_defaults(run=run)


def describe(settings: DiscordSettings) -> dict[str, Any]:
    """The checked configuration as plain data, tokens redacted."""
    urls = settings.webhook_urls
    router = Router(settings.routes, urls)
    EmbedRenderer(app_name=settings.app_name, templates_dir=settings.templates_dir).validate(urls)
    return {
        "webhooks": {name: url.redacted for name, url in sorted(urls.items())},
        "routes": [
            {"alert_type": kind, "webhook": carrier, "fallback": carrier not in (None, kind)}
            for kind, carrier in router.table()
        ],
        "logger_rules": [{"logger": prefix, "alert_type": kind} for prefix, kind in router.rules],
        "settings": settings.model_dump(mode="json", exclude={"webhooks"}),
    }


def run(args: argparse.Namespace) -> int:
    """Print the configuration; configuration errors propagate to main (exit 3)."""
    info = describe(load_settings())
    if args.json:
        emit_json({"ok": True, **info})
        return 0
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
    say(table(sorted(info["settings"].items()), ["setting", "value"]))
    return 0
