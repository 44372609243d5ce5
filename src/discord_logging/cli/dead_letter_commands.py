"""``discord-logging dead-letters``: list, show, delete, purge and export kept notifications."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

from ..deadletters import DeadLetter
from ..wording import counted
from . import _common as common
from .flush import advice
from .output import emit_json, say, table

if TYPE_CHECKING:
    from ..store import DurableDeadLetters

ERROR_WIDTH = 40
EXITS = "Exit codes: 0 ok, 1 failed (not found, refused, store unreadable), 2 usage error."


def register(commands: Any) -> None:
    """Add the ``dead-letters`` subcommand and its actions."""
    parser = commands.add_parser(
        "dead-letters",
        help="list, show, delete, purge or export dead letters",
        description="Notifications that could not be delivered are kept in the store with "
        "the reason. Redeliver them with `discord-logging flush`. These actions only read "
        "or delete: no webhook needs to be configured.",
        epilog=EXITS,
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    store = [common.store_parent()]

    listing = actions.add_parser(
        "list", parents=store, help="one line per dead letter, oldest first", epilog=EXITS
    )
    listing.add_argument("--webhook", type=common.alert_type, metavar="W", help="only webhook W")
    common.json_option(listing)
    listing.set_defaults(run=run_list)

    show = actions.add_parser(
        "show", parents=store, help="everything about one dead letter", epilog=EXITS
    )
    show.add_argument("id", metavar="ID", help="the letter's id, or a unique prefix of it")
    common.json_option(show)
    show.set_defaults(run=run_show)

    delete = actions.add_parser(
        "delete", parents=store, help="delete one dead letter (e.g. a poison one)", epilog=EXITS
    )
    delete.add_argument("id", metavar="ID", help="the letter's id, or a unique prefix of it")
    delete.set_defaults(run=run_delete)

    purge = actions.add_parser(
        "purge",
        parents=store,
        help="delete dead letters (all, or by age and webhook)",
        description="Delete dead letters. Asks for confirmation on a terminal; elsewhere "
        "--yes is required. Export them first if they may be needed.",
        epilog="WHEN is a duration ago (30m, 1h, 7d) or an ISO-8601 time. " + EXITS,
    )
    purge.add_argument(
        "--older-than",
        type=common.moment,
        metavar="WHEN",
        help="only letters that died before WHEN (e.g. 7d: more than 7 days ago)",
    )
    purge.add_argument("--webhook", type=common.alert_type, metavar="W", help="only webhook W")
    purge.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    common.json_option(purge)
    purge.set_defaults(run=run_purge)

    export = actions.add_parser(
        "export",
        parents=store,
        help="write dead letters to a JSON Lines file",
        description="Write every dead letter (of webhook W) to FILE, one JSON object a line, "
        "oldest first; '-' writes to stdout. The store is not changed.",
        epilog=EXITS,
    )
    export.add_argument(
        "file", metavar="FILE", help="the file to write (new; --force replaces one of yours)"
    )
    export.add_argument("--webhook", type=common.alert_type, metavar="W", help="only webhook W")
    common.parents_option(export)
    export.set_defaults(run=run_export)


def _letters(args: argparse.Namespace) -> list[DeadLetter]:
    store = common.read_store(args)
    try:
        if store is None or store.durable is None:
            return []
        found = store.durable.letters()
    finally:
        common.close_store(store)
    webhook = getattr(args, "webhook", None)
    return [x for x in found if webhook is None or x.webhook == webhook]


def as_json(letter: DeadLetter) -> dict[str, Any]:
    """A letter for scripts: its id and retryability along with :meth:`DeadLetter.to_dict`."""
    return {"id": letter.id, "retryable": letter.retryable, **letter.to_dict()}


@common.guarded
def run_list(args: argparse.Namespace) -> int:
    """One line per letter."""
    letters = _letters(args)
    if args.json:
        emit_json([as_json(x) for x in letters])
        return 0
    if not letters:
        say("No dead letters.")
        return 0
    short = common.short_ids(x.id for x in letters)
    rows = [
        (
            short[x.id],  # 8 characters, or more where two letters share them
            common.utc(x.dead_at),
            x.webhook,
            x.reason.value,
            "yes" if x.retryable else "no",
            x.attempts,
            common.cut(x.error, ERROR_WIDTH) or "-",
        )
        for x in letters
    ]
    headers = ["id", "dead at (UTC)", "webhook", "reason", "retryable", "attempts", "error"]
    say(table(rows, headers))
    say(
        f"\n{counted(len(letters), 'dead letter')}, oldest first. Details: dead-letters show ID "
        "(the id shown, or any unique prefix of it)."
    )
    return 0


def _resolve(durable: DurableDeadLetters, ident: str) -> DeadLetter | None:
    """The letter ``ident`` names, or None after saying why on stderr."""
    ident = ident.strip()
    letter = durable.get(ident) if ident else None
    if letter is not None:
        return letter
    matches = [x for x in durable.letters() if ident and x.id.startswith(ident)]
    if len(matches) > 1:
        shown = ", ".join(x.id for x in matches[:5]) + (", ..." if len(matches) > 5 else "")
        common.error(
            f"{ident!r} matches {counted(len(matches), 'dead letter')} ({shown}): give more "
            "characters of the id"
        )
    else:
        common.error(
            f"no dead letter has the id {ident!r}: list them with "
            "`discord-logging dead-letters list` (check --store if the letters are elsewhere)"
        )
    return None


def _find(args: argparse.Namespace, *, delete: bool = False) -> DeadLetter | None:
    store = common.read_store(args)
    try:
        if store is None or store.durable is None:
            common.error(f"no dead letter has the id {args.id!r}: the store is empty")
            return None
        letter = _resolve(store.durable, args.id)
        if letter is not None and delete:
            store.durable.remove(letter.id)
        return letter
    finally:
        common.close_store(store)


@common.guarded
def run_show(args: argparse.Namespace) -> int:
    """Everything about one letter, its notification in full."""
    letter = _find(args)
    if letter is None:
        return 1
    if args.json:
        emit_json(as_json(letter))
        return 0
    n = letter.notification
    facts: list[tuple[str, object]] = [
        ("id", letter.id),
        ("webhook", letter.webhook),
        ("reason", letter.reason.value),
        ("retryable", "yes" if letter.retryable else "no"),
        ("attempts", letter.attempts),
        ("dead at", common.utc(letter.dead_at)),
        ("http status", letter.http_status),
        ("error code", letter.error_code),
        ("error", letter.error),
        ("alert type", n.alert_type),
        ("title", n.title),
        ("level", n.level),
        ("logger", n.logger),
        ("created", common.utc(n.created)),
        ("host", n.host),
        ("where", f"{n.pathname}:{n.lineno} in {n.func_name}" if n.pathname else None),
        ("count", f"{n.count} (first seen {common.utc(n.first_seen)})" if n.count > 1 else None),
        *((f"field {k}", v) for k, v in n.fields),
        *((f"extra {k}", v) for k, v in n.extra),
    ]
    say(table([(k, v) for k, v in facts if v not in (None, "")], ["property", "value"]))
    say(f"\nWhat to do: {advice(letter.reason.value, [letter.webhook])}")
    say(f"\nMessage:\n{n.message}")
    if n.exc_text:
        say(f"\nTraceback:\n{n.exc_text}")
    return 0


@common.guarded
def run_delete(args: argparse.Namespace) -> int:
    """Delete one letter."""
    letter = _find(args, delete=True)
    if letter is None:
        return 1
    say(f"Deleted dead letter {letter.id} ({letter.webhook}, {letter.reason.value}).")
    return 0


def _confirm(count: int) -> bool:
    say(
        f"Delete {counted(count, 'dead letter')}? {'It' if count == 1 else 'They'} cannot be "
        "redelivered afterwards "
        "(`dead-letters export FILE` keeps a copy). [y/N] ",
        sys.stderr,
    )
    return sys.stdin.readline().strip().lower() in ("y", "yes")


@common.guarded
def run_purge(args: argparse.Namespace) -> int:
    """Delete the matching letters, after confirmation."""
    store = common.read_store(args)
    try:
        durable = store.durable if store is not None else None
        before = args.older_than
        doomed = [
            x
            for x in (durable.letters() if durable is not None else [])
            if (args.webhook is None or x.webhook == args.webhook)
            and (before is None or x.dead_at < before)
        ]
        deleted = 0
        if doomed and durable is not None and not args.yes:
            if not sys.stdin.isatty():
                common.error(
                    f"refusing to delete {counted(len(doomed), 'dead letter')} without "
                    "confirmation (stdin is not a terminal): pass --yes to delete "
                    + ("it" if len(doomed) == 1 else "them")
                )
                return 1
            if not _confirm(len(doomed)):
                say("Nothing deleted.", sys.stderr)
                return 1
        if doomed and durable is not None:
            deleted = durable.purge(before=before, webhook=args.webhook)
    finally:
        common.close_store(store)
    if args.json:
        emit_json({"deleted": deleted})
    else:
        say(f"Deleted {counted(deleted, 'dead letter')}." if deleted else "No dead letters match.")
    return 0


@common.guarded
def run_export(args: argparse.Namespace) -> int:
    """Write the letters as JSON Lines."""
    letters = _letters(args)
    rows = (x.to_dict() for x in letters)
    count, created = common.write_jsonl(args.file, rows, parents=args.parents, force=args.force)
    common.exported(counted(count, "dead letter"), args.file, created)
    return 0
