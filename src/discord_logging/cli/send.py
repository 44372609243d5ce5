"""``discord-logging send-test`` and ``check --ping``: send a real notification, show what
came back."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any, NamedTuple

from ..capture.snapshot import HOST
from ..deadletters import DeadLetter, DeadLetterSink
from ..notification import DeliveryStatus, NotificationResult
from ..transport.outcome import FORUM_NEEDS_THREAD
from . import _common as common
from .flush import advice
from .output import emit_json, say, table

# Delivery (httpx) loads when a notification is sent.
if TYPE_CHECKING:
    from ..delivery.notifier import Notifier
    from ..settings import DiscordSettings

TEST_TITLE = "discord-logging send-test"
PING_TITLE = "discord-logging check --ping"


def register(commands: Any) -> None:
    """Add the ``send-test`` subcommand."""
    parser = commands.add_parser(
        "send-test",
        parents=[common.store_parent()],
        help="send one test notification and show the outcome",
        description="Send one notification of alert type T through the configured webhooks, "
        "exactly as the handler would (routing, fallbacks, retries), and print the outcome. "
        "It is recorded in the history; if it cannot be delivered it is kept as a dead letter.",
        epilog="Exit codes: 0 delivered, 1 not delivered (the reason and what to do are "
        "printed), 2 usage error, 3 configuration error.",
    )
    parser.add_argument(
        "--type",
        type=common.alert_type,
        metavar="T",
        default="general",
        help="the alert type to send (default general)",
    )
    parser.add_argument(
        "--message", metavar="M", help="the message text (default: names this host)"
    )
    common.json_option(parser)
    parser.set_defaults(run=run)


@common.guarded
def run(args: argparse.Namespace) -> int:
    """Send, print the outcome; exit 1 unless delivered."""
    import asyncio

    from ..delivery.notifier import Notifier
    from ..settings import load_settings, webhook_variable

    settings = load_settings()  # a ConfigurationError reaches main: exit 3
    message = args.message or f"Test notification from discord-logging on {HOST}."
    store = common.open_store(args, settings)
    try:
        notifier = Notifier(
            settings,
            dead_letters=KeepOnly(store.dead_letters),
            listeners=[store.record],
            store_dir=store.path,  # counted in the running applications' limits
        )
        result = asyncio.run(_send_one(notifier, args.type, message))
        carrier = notifier.router.carrier(args.type)
        letter = store.durable.get(result.notification_id) if store.durable else None
    finally:
        common.close_store(store)
    reason = letter.reason.value if letter is not None else None
    if args.json:
        emit_json(
            {"alert_type": args.type, "webhook": carrier, "reason": reason, **result.to_dict()}
        )
    else:
        say(table([_row(carrier or "-", result)], ROW_HEADERS))
    if result.ok:
        return 0
    if carrier is None:
        common.error(
            f"no webhook carries alert type {args.type!r}: set {webhook_variable(args.type)} "
            "or DISCORD_WEBHOOK_GENERAL"
        )
    elif reason is not None:
        common.error(
            f"not delivered ({reason}); it is kept as dead letter {result.notification_id}. "
            + advice(reason, [carrier])
        )
    else:
        common.error(f"not delivered ({result.error or result.status.value})")
    return 1


class KeepOnly(DeadLetterSink):
    """The store's dead letters for a one-off send: a failure is kept, but the backlog is not
    redelivered on the side (that is `flush`'s job)."""

    def __init__(self, inner: DeadLetterSink) -> None:
        self._inner = inner
        self.durable = inner.durable

    def add(self, letter: DeadLetter) -> None:
        self._inner.add(letter)

    def retryable(self, webhook: str, limit: int) -> list[DeadLetter]:
        return []

    def remove(self, letter_id: str) -> None:
        self._inner.remove(letter_id)

    def letters(self) -> list[DeadLetter]:
        return self._inner.letters()

    def sync(self) -> None:
        getattr(self._inner, "sync", lambda: None)()

    def __len__(self) -> int:
        return len(self._inner)


async def _send_one(notifier: Notifier, alert_type: str, message: str) -> NotificationResult:
    try:
        return await notifier.send(alert_type, TEST_TITLE, message)
    finally:
        await notifier.aclose()


ROW_HEADERS = ["webhook", "status", "message id", "http status", "attempts", "error"]


def _row(webhook: str, result: NotificationResult) -> list[object]:
    return [
        webhook,
        result.status.value,
        result.message_id or "-",
        result.http_status or "-",
        result.attempts,
        common.cut(result.error, 60) or "-",
    ]


class Ping(NamedTuple):
    """One webhook's ping: its outcome, and whether Discord taught that the webhook posts into
    a forum channel (it answered 220001 until the ping opened a post)."""

    webhook: str
    result: NotificationResult
    forum_learned: bool = False


def ping(settings: DiscordSettings) -> list[Ping]:
    """Send one notification per configured webhook (alert type = its name); nothing is
    stored: a failed ping leaves no dead letter behind."""
    import asyncio

    names = sorted(settings.webhooks)

    async def go() -> list[Ping]:
        from ..delivery.notifier import Notifier
        from ..store import limits_directory

        # Nothing is stored (no letter, no history), but a ping is one more sender in the
        # limits the running applications share: beside them it waits rather than earn 429s.
        notifier = Notifier(settings, store_dir=limits_directory(settings))
        try:
            message = f"Ping from `discord-logging check --ping` on {HOST}."
            results = await asyncio.gather(*(notifier.send(n, PING_TITLE, message) for n in names))
            return [
                Ping(name, result, notifier.lanes[name].poster.forum.learned)
                for name, result in zip(names, results, strict=True)
            ]
        finally:
            await notifier.aclose()

    return asyncio.run(go())


def print_pings(pings: list[Ping]) -> None:
    """A row per webhook, then what to do about the failures (and forum channels)."""
    from ..settings import webhook_variable

    say(table([_row(p.webhook, p.result) for p in pings], ROW_HEADERS))
    for name, result, learned in pings:
        if learned:
            say(
                f"Note: webhook {name!r} posts into a forum (or media) channel: Discord refused "
                "a message without a post title (400, code 220001), so each alert opens a post "
                f"of its own there, titled by the template's post_title. Set DISCORD_FORUM={name} "
                "(forum= keyword) to say so up front and save that refused request at each "
                "start; DISCORD_FORUM_TAGS applies the forum's tags."
            )
        if result.status is DeliveryStatus.DELIVERED:
            continue
        if result.error_code == FORUM_NEEDS_THREAD:
            common.error(
                f"the ping to webhook {name!r} failed: its channel is a forum (or media) "
                "channel, where each message must open a post (Discord's code 220001). Set "
                f"DISCORD_FORUM={name} so every alert opens its own post, then ping again."
            )
            continue
        common.error(
            f"the ping to webhook {name!r} failed ({result.error or result.status.value}): "
            f"check {webhook_variable(name)}"
            + (
                " (copy the URL again from Discord)."
                if result.http_status in (401, 403, 404)
                else "; Discord or the network may be down, try again later."
            )
        )
