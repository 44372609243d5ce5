"""``discord-logging history``: what was sent, newest first, filtered; or exported."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

from ..notification import DeliveryStatus
from ..wording import counted
from . import _common as common
from .output import emit_json, say, table

if TYPE_CHECKING:
    from ..store import Store

DEFAULT_LIMIT = 50
TITLE_WIDTH = 60
# The outcomes the history records (store/history.py make_entry from a final result): a
# notification is written once it was delivered, failed, dead-lettered or muted. RETRYING and
# RATE_LIMITED are states in flight, never written, so they are not offered as filters.
RECORDED_STATUSES = (
    DeliveryStatus.DELIVERED.value,
    DeliveryStatus.FAILED.value,
    DeliveryStatus.DEAD_LETTERED.value,
    DeliveryStatus.MUTED.value,  # held by a mute (cli/mute.py)
)


def register(commands: Any) -> None:
    """Add the ``history`` subcommand."""
    parser = commands.add_parser(
        "history",
        parents=[common.store_parent()],
        help="show the notification history, newest first",
        description="Show what was sent (or failed), newest first, from the store. Every "
        "filter given must match. Reads the store only: no webhook needs to be configured.",
        epilog="WHEN is a duration ago (30s, 30m, 1h, 2d, 1w) or an ISO-8601 time "
        "(2024-05-01T12:00:00Z; UTC unless it names a zone). Exit codes: 0 ok, 1 failed "
        "(store unreadable, export file unwritable), 2 usage error.",
    )
    parser.add_argument(
        "--type", type=common.alert_type, metavar="T", help="only this alert type (e.g. error)"
    )
    parser.add_argument(
        "--status",
        choices=RECORDED_STATUSES,
        help="only this outcome",
    )
    parser.add_argument(
        "--id", metavar="ID", help="only the notification whose id starts with ID (8 characters do)"
    )
    parser.add_argument(
        "--since", type=common.moment, metavar="WHEN", help="only notifications created since"
    )
    parser.add_argument(
        "--until", type=common.moment, metavar="WHEN", help="only notifications created until"
    )
    parser.add_argument(
        "--grep",
        metavar="TEXT",
        help="only entries whose title, message, logger, error or traceback contain TEXT "
        "(case-insensitive)",
    )
    parser.add_argument(
        "--limit",
        type=common.positive_int,
        metavar="N",
        help=f"at most N entries (default {DEFAULT_LIMIT}; with --export: all)",
    )
    parser.add_argument(
        "--export",
        metavar="FILE",
        help="write the matching entries to FILE as JSON Lines, oldest first, instead of "
        "printing them ('-' for stdout)",
    )
    common.parents_option(parser)
    common.json_option(parser)
    parser.set_defaults(run=run)


@common.guarded
def run(args: argparse.Namespace) -> int:
    """Print (or export) the matching history entries."""
    store = common.read_store(args)
    try:
        entries = query(store, args) if store is not None else []
    finally:
        common.close_store(store)
    if args.export is not None:
        count, created = common.write_jsonl(
            args.export, reversed(entries), parents=args.parents, force=args.force
        )
        if args.json and args.export != "-":
            emit_json(
                {"exported": count, "file": args.export, "created": [str(d) for d in created]}
            )
        else:
            common.exported(
                counted(count, "history entry", "history entries"), args.export, created
            )
        return 0
    if args.json:
        emit_json(entries)
        return 0
    if not entries:
        say("No history entries match.")
        return 0
    short = common.short_ids(str(entry.get("id", "")) for entry in entries)
    rows = [
        (
            short.get(str(entry.get("id", "")), ""),
            common.utc(entry.get("created")),
            entry.get("alert_type"),
            entry.get("status"),
            common.cut(entry.get("title"), TITLE_WIDTH),
            entry.get("attempts"),
            entry.get("message_id") or "-",
        )
        for entry in entries
    ]
    say(table(rows, ["id", "time (UTC)", "type", "status", "title", "attempts", "message id"]))
    limit = args.limit or DEFAULT_LIMIT
    more = " (the limit: pass --limit N to see more)" if len(entries) >= limit else ""
    say(f"\n{counted(len(entries), 'entry', 'entries')}, newest first{more}.")
    return 0


def query(store: Store, args: argparse.Namespace) -> list[dict[str, Any]]:
    """The entries matching ``args``' filters, newest first."""
    if store.history is None:
        return []
    if args.limit is not None:
        limit = args.limit
    else:
        limit = sys.maxsize if args.export is not None else DEFAULT_LIMIT
    prefix = (args.id or "").strip()
    found = store.history.query(
        alert_type=args.type,
        status=args.status,
        since=args.since,
        until=args.until,
        text=args.grep,
        limit=sys.maxsize if prefix else limit,
    )
    if prefix:
        found = [e for e in found if str(e.get("id", "")).startswith(prefix)][:limit]
    return found
