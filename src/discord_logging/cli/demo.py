"""``discord-logging demo``: the whole job against a local FakeDiscord, ending in a summary."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from . import _common as common
from .output import emit_json, say


def register(commands: Any) -> None:
    """Add the ``demo`` subcommand."""
    parser = commands.add_parser(
        "demo",
        help="play a compressed minute of an application's life against a local FakeDiscord",
        description="Configure DiscordHandler through dictConfig and play six alert types, a "
        "long traceback, a storm, an @everyone attempt, a 100 KB message, an outage and a "
        "rate-limit squeeze. Exit 0 only when nothing was lost (and, with --real, when "
        "something arrived). The store is a temporary directory, deleted at the end, unless "
        "--store is given.",
    )
    parser.add_argument(
        "--quick", action="store_true", help="the same scenes with fewer records (for CI)"
    )
    parser.add_argument(
        "--real",
        action="store_true",
        help="send to the webhooks in the environment instead of the local FakeDiscord "
        "(the outage and squeeze are skipped: they need the fake)",
    )
    parser.add_argument(
        "--store",
        type=Path,
        default=argparse.SUPPRESS,
        help="keep the demo's store there (default: a temporary directory, deleted at the end)",
    )
    common.json_option(parser, "print the summary as JSON")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Play the demo; exit 1 if any record was lost."""
    from ..demo import run_demo, summary_lines

    report = run_demo(
        quick=args.quick,
        real=args.real,
        store_path=args.store,
        out=sys.stderr if args.json else sys.stdout,
    )
    if args.json:
        store = report.store if report.kept_store else None
        emit_json({"lost": report.lost, "store": store, "stats": report.stats})
    else:
        say("")
        for line in summary_lines(report):
            say(line)
    if report.lost:
        say(f"discord-logging demo: {report.lost} record(s) were lost", sys.stderr)
        return 1
    if args.real and not report.arrived:
        say(
            "discord-logging demo: nothing arrived at Discord (every record was kept as a dead "
            "letter): run `discord-logging check --ping` to see why",
            sys.stderr,
        )
        return 1
    return 0
