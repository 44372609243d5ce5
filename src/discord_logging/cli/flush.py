"""``discord-logging flush``: redeliver the dead letters kept in the store, without duplicates."""

from __future__ import annotations

import argparse
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from ..deadletters import DeadLetter
from ..notification import Notification, NotificationResult
from ..wording import counted
from . import _common as common
from .output import emit_json, say, table

# Delivery (httpx) and the store (diskcache) load when a flush runs.
if TYPE_CHECKING:
    from ..delivery.notifier import Notifier
    from ..settings import DiscordSettings
    from ..store import Store

EXIT_CONFIG = 3

# -- dead-letter reasons ----------------------------------------------------------------------

_ADVICE: Final = {
    "retries_exhausted": "Discord kept failing (5xx, timeouts, connection errors): check "
    "https://discordstatus.com and this host's network, then run `discord-logging flush` again.",
    "circuit_open": "too many failures in a row on this webhook: wait a minute, then run "
    "`discord-logging flush` again.",
    "rate_limited": "still rate limited (or this IP is banned by Cloudflare) when time ran "
    "out: wait a few minutes, then run `discord-logging flush` again.",
    "queue_overflow": "the webhook's queue was full: run `discord-logging flush` again "
    "(or raise DISCORD_QUEUE_SIZE).",
    "shutdown": "not delivered before time ran out: run `discord-logging flush` again "
    "(with a larger --timeout).",
    "poison": "Discord refuses the payload itself (400): inspect it with `discord-logging "
    "dead-letters show ID`; fix the template or the message, then delete it with "
    "`discord-logging dead-letters delete ID`.",
    "webhook_disabled": "Discord answered 401/403/404: the webhook was deleted or its token "
    "is wrong. Fix {variable} (copy the URL again from Discord), then run `discord-logging "
    "flush` again.",
    "internal_error": "discord-logging itself failed on this notification (a bug; the error "
    "names the exception): please report it; `discord-logging dead-letters show ID` shows "
    "the record, and `discord-logging flush` tries it again.",
    "uncertain": "Discord's answer to it was lost (cut off at shutdown, a timeout, a gateway "
    "error): Discord may already have "
    "posted it. It is redelivered with a note saying it may repeat an earlier message: run "
    "`discord-logging flush` again.",
    "process_ended": "the process that logged it was killed (SIGKILL, the OOM killer, "
    "os._exit) before it was delivered; taken from its journal: run `discord-logging flush` "
    "again.",
    "claimed_elsewhere": "another process (a running application or another flush) is "
    "redelivering these right now: let it finish, or run `discord-logging flush` again in "
    "two minutes (a claim expires, and a dead process's claim is taken over).",
    "not_reached": "the --timeout ran out before these were tried: run `discord-logging flush` "
    "again (with a larger --timeout).",
    "arrived": "these were dead-lettered (by a running application) while the flush ran: run "
    "`discord-logging flush` again.",
    "not_configured": "they were written for a webhook this configuration does not have (a "
    "letter goes only to the webhook it was written for, never to whatever {variable} says "
    "now): run the flush with the configuration that kept them, or delete them with "
    "`discord-logging dead-letters purge --webhook {webhook}`.",
    "destination_unknown": "kept by an older version that did not record which webhook they "
    "were for, so they are held: never guessed. Inspect them with `discord-logging "
    "dead-letters show ID`, then delete them with `discord-logging dead-letters purge "
    "--webhook {webhook}` (or `dead-letters export` first).",
}


def advice(reason: str, webhooks: Iterable[str] = ()) -> str:
    """What a dead-letter reason means and what the operator should do about it."""
    names = sorted(set(webhooks))
    from ..settings import webhook_variable

    variable = " / ".join(webhook_variable(name) for name in names) or "DISCORD_WEBHOOK_<NAME>"
    text = _ADVICE.get(
        reason,
        "not delivered ({reason}): check the configuration with `discord-logging check "
        "--ping`, then run `discord-logging flush` again.",
    )
    return text.format(variable=variable, webhook=names[0] if names else "NAME", reason=reason)


def register(commands: Any) -> None:
    """Add the ``flush`` subcommand."""
    parser = commands.add_parser(
        "flush",
        parents=[common.store_parent()],
        help="redeliver the dead letters kept in the store",
        description="Redeliver every dead letter in the store (of webhook W), oldest first, "
        "through the configured webhooks; delivered letters leave the store. Nothing is "
        "posted twice: a letter Discord already has is only forgotten, and a letter another "
        "process is redelivering is left to it. An interrupted flush can simply be run again.",
        epilog="Exit codes: 0 nothing remains, 1 some letters remain (the reasons and what "
        "to do are printed) or the store is unusable, 2 usage error, 3 configuration error.",
    )
    parser.add_argument(
        "--webhook", type=common.alert_type, metavar="W", help="only the letters of webhook W"
    )
    parser.add_argument(
        "--timeout",
        type=common.positive_float,
        metavar="S",
        help="stop redelivering after S seconds (default: no limit); the rest stays stored",
    )
    common.json_option(parser)
    parser.set_defaults(run=run)


@dataclass
class FlushOutcome:
    """What a flush did, checked against the store afterwards."""

    total: int = 0
    from_journals: int = 0  # records taken in from the journals of processes that ended
    delivered: int = 0
    skipped: int = 0
    timed_out: bool = False
    failing: dict[str, list[DeadLetter]] = field(default_factory=lambda: defaultdict(list))

    @property
    def remaining(self) -> int:
        """Letters (of the chosen webhook) still in the store."""
        return sum(len(letters) for letters in self.failing.values())

    def to_dict(self) -> dict[str, Any]:
        """For --json."""
        return {
            "total": self.total,
            "from_journals": self.from_journals,
            "delivered": self.delivered,
            "skipped_already_delivered": self.skipped,
            "claimed_elsewhere": len(self.failing.get("claimed_elsewhere", [])),
            "remaining": self.remaining,
            "timed_out": self.timed_out,
            "still_failing": {
                reason: {
                    "letters": len(letters),
                    "webhooks": sorted({x.webhook for x in letters}),
                    "advice": advice(reason, [x.webhook for x in letters]),
                }
                for reason, letters in sorted(self.failing.items())
            },
        }


@common.guarded
def run(args: argparse.Namespace) -> int:
    """Flush, then say what happened and, when letters remain, why and what to do."""
    import asyncio

    from ..settings import load_settings, webhook_variable

    settings = load_settings()  # a ConfigurationError reaches main: exit 3
    if args.webhook is not None and args.webhook not in settings.webhooks:
        configured = ", ".join(sorted(settings.webhooks))
        common.error(
            f"webhook {args.webhook!r} is not configured (configured: {configured}): set "
            f"{webhook_variable(args.webhook)}, or flush without --webhook"
        )
        return EXIT_CONFIG
    store = common.open_store(args, settings)
    try:
        outcome = asyncio.run(flush(store, settings, args.webhook, args.timeout))
    finally:
        common.close_store(store)
    if args.json:
        emit_json(outcome.to_dict())
    else:
        _describe(outcome, args.timeout)
    return 0 if outcome.remaining == 0 else 1


async def flush(
    store: Store, settings: DiscordSettings, webhook: str | None, timeout: float | None
) -> FlushOutcome:
    """Replay the store's letters (of ``webhook``) and account for every one of them."""
    import asyncio

    from ..delivery.notifier import Notifier
    from ..delivery.replay import replay

    durable = store.durable
    assert durable is not None  # open_store refuses a degraded store

    def chosen(letter: DeadLetter) -> bool:
        return webhook is None or letter.webhook == webhook

    if webhook is not None:  # only that lane runs: the others would redeliver on their own
        settings = settings.replace(webhooks={webhook: settings.webhooks[webhook]})
    results: dict[str, NotificationResult] = {}

    def collect(notification: Notification, result: NotificationResult, lane: str) -> None:
        results[notification.id] = result

    notifier = Notifier(
        settings,
        dead_letters=store.dead_letters,
        listeners=[store.record, collect],
        store_dir=store.path,  # the running applications' limits: a flush is one more sender
    )
    from_journals = take_in_journals(store)
    before = {x.id for x in durable.letters() if chosen(x)}
    outcome = FlushOutcome(total=len(before), from_journals=from_journals)
    progress = common.Progress("flush")
    task = asyncio.ensure_future(replay(store, notifier, webhook=webhook, progress=progress))
    try:
        done, _ = await asyncio.wait({task}, timeout=timeout)
        if not done:
            outcome.timed_out = True
            task.cancel()
        await asyncio.gather(task, return_exceptions=outcome.timed_out)
    finally:
        progress.close()
        await notifier.aclose()  # delivers what is queued within DISCORD_CLOSE_TIMEOUT
    outcome.delivered = sum(1 for i in before if i in results and results[i].ok)
    remaining = [x for x in store.dead_letters.letters() if chosen(x)]  # buffered ones too
    for letter in remaining:
        outcome.failing[_why(letter, before, results, notifier, outcome.timed_out)].append(letter)
    outcome.skipped = (
        outcome.total - outcome.delivered - sum(1 for x in remaining if x.id in before)
    )
    return outcome


def take_in_journals(store: Store) -> int:
    """Take the journals whose holders are gone (processes killed, containers restarted)
    into the store as letters, as a running application's look does; returns how many. The
    flush is a holder of its own while it takes them (its lock file in the store)."""
    from ..delivery.journaling import recover_dead
    from ..stats import DeliveryStats
    from ..store.journal import Journal

    taker = Journal(store.path / "journal", 0, DeliveryStats())
    try:
        return recover_dead(taker.directory, store, taker)
    finally:
        taker.close()


def _why(
    letter: DeadLetter,
    before: set[str],
    results: dict[str, NotificationResult],
    notifier: Notifier,
    timed_out: bool,
) -> str:
    """Why ``letter`` is still in the store after the flush."""
    if letter.destination is None:
        return "destination_unknown"
    if not notifier.posts_to(letter.destination):
        return "not_configured"
    if letter.id not in before:
        return "arrived"  # dead-lettered by another process while this flush ran
    if letter.id in results:
        return letter.reason.value  # tried again, and kept again for this reason
    return "not_reached" if timed_out else "claimed_elsewhere"


def summary(outcome: FlushOutcome) -> str:
    """One sentence on what the flush did: ``Delivered 2 of 5 dead letters (1 skipped: ...).``"""
    n, done = outcome.total, outcome.delivered
    if n and done == n:
        head = "Delivered the only dead letter" if n == 1 else f"Delivered all {n} dead letters"
    elif done == 0:
        head = "Delivered nothing: " + (
            "the 1 dead letter was not sent" if n == 1 else f"none of the {n} dead letters was sent"
        )
        if outcome.skipped == n:
            head = f"Nothing to send: Discord already had {'it' if n == 1 else f'all {n}'}"
    else:
        head = f"Delivered {done} of {counted(n, 'dead letter')}"
    notes = []
    if outcome.skipped and outcome.skipped != n:
        them = "it" if outcome.skipped == 1 else "them"
        notes.append(f"{outcome.skipped} skipped: Discord already had {them}")
    claimed = len(outcome.failing.get("claimed_elsewhere", []))
    if claimed:
        notes.append(f"{claimed} claimed by another process")
    return head + (f" ({'; '.join(notes)})" if notes else "") + "."


def _describe(outcome: FlushOutcome, timeout: float | None) -> None:
    if outcome.from_journals:
        say(
            f"Took {counted(outcome.from_journals, 'record')} in from the journals of "
            "processes that ended before delivering them."
        )
    if outcome.total == 0 and not outcome.remaining:
        say("No dead letters to flush.")
        return
    say(summary(outcome))
    if outcome.timed_out:
        say(f"Stopped after --timeout {timeout:g} s.")
    if not outcome.remaining:
        say("Nothing remains in the store.")
        return
    rows = [
        (reason, len(letters), ", ".join(sorted({x.webhook for x in letters})))
        for reason, letters in sorted(outcome.failing.items())
    ]
    remain = "remains" if outcome.remaining == 1 else "remain"
    say(f"\n{counted(outcome.remaining, 'dead letter')} {remain}:")
    say(table(rows, ["why", "letters", "webhooks"]))
    say("\nWhat to do:")
    for reason, letters in sorted(outcome.failing.items()):
        say(f"  {reason}: {advice(reason, [x.webhook for x in letters])}")
    say("List them with `discord-logging dead-letters list`.")
