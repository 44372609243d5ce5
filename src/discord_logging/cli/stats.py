"""``discord-logging stats``: outcomes by alert type over a period, and the dead letters kept."""

from __future__ import annotations

import argparse
import time
from collections import Counter
from typing import Any

from ..notification import DeliveryStatus
from . import _common as common
from . import mute
from .output import emit_json, say, table

DEFAULT_SINCE = "24h"


def register(commands: Any) -> None:
    """Add the ``stats`` subcommand."""
    parser = commands.add_parser(
        "stats",
        parents=[common.store_parent()],
        help="count notifications by alert type and outcome; dead letters by webhook",
        description="Count the history's notifications by alert type and outcome since WHEN, "
        "and the dead letters kept now by webhook and reason. Reads the store only: no "
        "webhook needs to be configured.",
        epilog="WHEN is a duration ago (30m, 1h, 2d, 1w) or an ISO-8601 time. Exit codes: "
        "0 ok, 1 failed (store unreadable), 2 usage error.",
    )
    parser.add_argument(
        "--since",
        type=common.moment,
        metavar="WHEN",
        default=DEFAULT_SINCE,
        help=f"count notifications created since WHEN (default {DEFAULT_SINCE})",
    )
    common.json_option(parser)
    parser.set_defaults(run=run)


@common.guarded
def run(args: argparse.Namespace) -> int:
    """Print the counts."""
    since: float = args.since  # argparse applies the type to the default too
    store = common.read_store(args)
    try:
        history = store.history if store is not None else None
        counts = history.counts(since=since) if history is not None else {}
        durable = store.durable if store is not None else None
        letters = durable.letters() if durable is not None else []
    finally:
        common.close_store(store)
    now = time.time()
    mutes = [mute.as_dict(m, now) for m in mute.active(common.store_path(args), mute.redis_url())]
    dead: dict[str, dict[str, int]] = {}
    for (webhook, reason), n in sorted(
        Counter((x.webhook, x.reason.value) for x in letters).items()
    ):
        dead.setdefault(webhook, {})[reason] = n
    if args.json:
        emit_json(
            {
                "since": common.utc(since),
                "until": common.utc(time.time()),
                "history": counts,
                "dead_letters": dead,
                "dead_letters_total": len(letters),
                "mutes": mutes,
            }
        )
        return 0
    _print_history(counts, since)
    for found in mutes:
        say(f"Muted now: {found['scope']} until {found['end']} (id {found['id']})")
    say("")
    if not letters:
        say("No dead letters are kept.")
        return 0
    rows = [(w, r, n) for w, by_reason in dead.items() for r, n in by_reason.items()]
    say(f"Dead letters kept now: {len(letters)}")
    say(table(rows, ["webhook", "reason", "letters"]))
    return 0


def _print_history(counts: dict[str, dict[str, int]], since: float) -> None:
    if not counts:
        say(f"No notifications recorded since {common.utc(since)}.")
        return
    say(f"Notifications since {common.utc(since)}:")
    known = [s.value for s in DeliveryStatus]
    present = {status for by_status in counts.values() for status in by_status}
    statuses = [s for s in known if s in present] + sorted(present - set(known))
    rows: list[list[object]] = []
    totals: Counter[str] = Counter()
    for kind, by_status in sorted(counts.items()):
        totals.update(by_status)
        rows.append([kind, *(by_status.get(s, 0) for s in statuses), sum(by_status.values())])
    rows.append(["total", *(totals[s] for s in statuses), sum(totals.values())])
    say(table(rows, ["alert type", *statuses, "total"]))
