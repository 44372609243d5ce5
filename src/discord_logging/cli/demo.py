"""``discord-logging demo``: a minute of an application's life, compressed, against a local
FakeDiscord, ending in a summary.

The handler is configured through ``dictConfig`` exactly as a user would; Discord is the
built-in FakeDiscord on loopback unless ``real`` is set. The demo passes only if nothing
was lost: every record emitted was delivered, folded into a storm summary, or is kept.
"""

from __future__ import annotations

import argparse
import logging
import logging.config
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from ..alerts import AlertType
from ..render.timestamps import readable_times
from ..wording import counted, write_line
from . import _common as common
from .output import emit_json, say

if TYPE_CHECKING:  # imported when the demo runs: `discord-logging --help` stays fast
    from ..handler import DiscordHandler
    from ..testing import FakeDiscord

TYPES = [t.value for t in AlertType]
FORUM_TYPE = "ops"  # a custom alert type whose webhook posts into a forum channel


@dataclass
class DemoReport:
    """What the demo measured; ``lost`` must be 0."""

    stats: dict[str, Any]
    store: str
    seconds: float
    received_429: int
    messages_at_discord: int
    notes: list[str] = field(default_factory=list)
    kept_store: bool = True  # False: the store was a temporary directory, deleted at the end

    @property
    def lost(self) -> int:
        """Records neither delivered, folded into a storm summary, nor dead-lettered (a dead
        letter is either still kept or was redelivered later)."""
        s = self.stats
        accounted = s["delivered"] + s["aggregated"] + s["dead_lettered"]
        dropped = sum(s["dropped"].values())  # refused at the hand-off: never emitted
        return max(0, int(s["emitted"]) - int(accounted)) + int(dropped)

    @property
    def arrived(self) -> int:
        """Messages Discord (or the fake) accepted."""
        return int(self.stats["messages_sent"])


def run_demo(
    *,
    quick: bool = False,
    real: bool = False,
    store_path: Path | None = None,
    out: TextIO = sys.stdout,
) -> DemoReport:
    """Play the scenario and return the report (printing live progress to ``out``).

    Without ``store_path`` the store is a temporary directory, deleted before returning
    unless dead letters are still kept in it (the report then names it).
    ``quick`` plays the same scenes with fewer records and shorter waits (one attempt per
    notification, a 1 s circuit), so it finishes sooner than the full run."""
    started = time.monotonic()
    temporary = store_path is None
    store = store_path or Path(tempfile.mkdtemp(prefix="discord-logging-demo-"))
    try:
        report = _run(quick, real, store, out, started)
    except BaseException:
        if temporary:
            shutil.rmtree(store, ignore_errors=True)
        raise
    # A temporary store is deleted unless it still holds dead letters: those are kept, and
    # the summary says where.
    if temporary and not report.stats.get("dead_letters_kept"):
        shutil.rmtree(store, ignore_errors=True)
        report.kept_store = False
    return report


def _run(quick: bool, real: bool, store: Path, out: TextIO, started: float) -> DemoReport:

    from ..handler import DiscordHandler
    from ..testing import FakeDiscord

    def narrate(text: str) -> None:
        write_line(f"[{time.monotonic() - started:5.1f}s] {text}", out)

    with ExitStack() as stack:
        fake: FakeDiscord | None = None
        handler_config: dict[str, Any] = {
            "class": "discord_logging.DiscordHandler",
            "app_name": "demo-shop",
            "aggregate_window": 1 if quick else 5,
            "close_timeout": 10,
            "queue_size": 500,
            "store_path": str(store),
            "routes": {"shop.tracks": "tracklist", "shop.health": "monitoring"},
            "incident_edit_interval": 0.3 if quick else 1,
        }
        if not real:
            fake = stack.enter_context(FakeDiscord())
            handler_config["webhooks"] = {kind: fake.add_webhook() for kind in TYPES}
            # A forum channel, not configured as one: Discord's first answer (220001) says so.
            handler_config["webhooks"][FORUM_TYPE] = fake.add_webhook(forum=True)
            handler_config["routes"]["shop.ops"] = FORUM_TYPE
            handler_config["allowed_hosts"] = fake.host
            handler_config["engine_options"] = {"circuit_reset": 1.0 if quick else 2.0}
            if quick:  # an outage record is kept at its first 503: no retry waits
                handler_config["retry_attempts"] = 1
            narrate(
                f"FakeDiscord listening on {fake.base_url} with six webhooks and a forum "
                f"channel's ({FORUM_TYPE!r})"
            )
        if real:
            # The handler checks its settings on its worker (a bad one is said there and the
            # demo would play to nobody): the CLI checks them first, one line and exit 3.
            from ..settings import load_settings

            load_settings(**{k: v for k, v in handler_config.items() if k != "class"})
        logging.config.dictConfig(
            {
                "version": 1,
                "disable_existing_loggers": False,
                "handlers": {"discord": handler_config},
                "loggers": {"shop": {"handlers": ["discord"], "level": "INFO"}},
            }
        )
        handler = logging.getLogger("shop").handlers[-1]
        assert isinstance(handler, DiscordHandler)
        log = logging.getLogger("shop")
        try:
            _play(log, handler, fake, quick, narrate)
            narrate("closing: flushing what is queued, keeping the rest as dead letters")
        finally:
            logging.getLogger("shop").removeHandler(handler)
            handler.close()
        stats = handler.stats()
        report = DemoReport(
            stats=stats,
            store=str(handler_config["store_path"]),
            seconds=time.monotonic() - started,
            received_429=fake.count_status(429) if fake else stats["rate_limited"],
            messages_at_discord=len(fake.messages) if fake else stats["messages_sent"],
        )
    return report


def _play(
    log: logging.Logger,
    handler: DiscordHandler,
    fake: FakeDiscord | None,
    quick: bool,
    narrate: Callable[[str], None],
) -> None:
    narrate("service starts: one record of each of the six alert types")
    log.info("checkout service started (version 2.4.1)")
    log.error("payment declined for order %s", 1001)
    log.critical("primary database unreachable")
    logging.getLogger("shop.tracks").info("new track published: 'Night Drive'")
    logging.getLogger("shop.health").warning("disk usage at 91%% on /var")
    log.warning("5 failed logins for admin", extra={"alert_type": "security", "ip": "203.0.113.9"})

    narrate("an exception with a long traceback (60 frames, cut to its tail, full text attached)")
    try:
        _deep(60)
    except RecursionError:
        log.exception("order pipeline crashed")

    narrate("someone logs '@everyone the build is broken <@&123>': shown, never pinged")
    log.warning("@everyone the build is broken <@&123> @here")
    narrate("a 100 KB message: cut to fit Discord, full text attached")
    log.error("response body was: %s", "x" * 100_000)

    narrate("storm: 500 identical errors in a burst: one message, its count kept current")
    for i in range(500):
        log.error("cache node %s timed out", "redis-3", extra={"attempt": i})

    _incident(handler, fake, quick, narrate)

    if fake is not None:
        webhook_id = handler.settings.webhook_urls["error"].webhook_id
        narrate("outage: the error webhook answers 503 for a while; records are kept")
        fake.set_status_override(webhook_id, 503)
        outage = 4 if quick else 10
        for i in range(outage):  # distinct messages (f-strings): no storm to fold them
            log.error(f"checkout failed for basket {i}: card network timeout")
        _wait(lambda: handler.stats()["dead_letters_kept"] >= outage, 10 if quick else 20)
        fake.set_status_override(webhook_id, None)
        stats = handler.stats()
        retried = stats["retried"]  # none with --quick: a record is kept at its first 503
        after = f" after {counted(retried, 'retry', 'retries')}" if retried else ""
        narrate(
            f"outage over: {counted(stats['dead_letters_kept'], 'record')} kept in the store"
            f"{after}; redelivering them"
        )
        log.error("checkout recovered")
        _wait(lambda: handler.stats()["dead_letters_kept"] == 0, 15)

    burst = 60 if quick else 200
    if fake is not None:
        narrate(
            f"rate-limit squeeze: Discord answers 429 once, then a burst of {burst} "
            "distinct records"
        )
        fake.force_429(1, retry_after=0.5)
    for i in range(burst):
        log.info(f"order {5000 + i} shipped to customer {i % 37}")
    _wait(lambda: handler.stats()["queue_depth"] == 0, 20)


def _incident(
    handler: DiscordHandler, fake: FakeDiscord | None, quick: bool, say: Callable[[str], None]
) -> None:
    """An incident kept current by edits, and one that opens a forum post."""
    narrate, log = say, logging.getLogger("shop")
    narrate(
        "incident: the payment gateway times out again and again: its one message is edited "
        "with the running count, then says when it went quiet"
    )
    ops = logging.getLogger("shop.ops")
    for host in ("web-3", "web-4"):  # one incident (its fingerprint): one forum post
        ops.error("deploy 2.4.2 failed on %s", host, extra={"fingerprint": "deploy-2.4.2"})
    for i in range(10 if quick else 25):
        log.error("payment gateway timeout after %d ms", 3000 + i, extra={"fingerprint": "gw"})
        time.sleep(0.1 if quick else 0.2)
    window = handler.settings.aggregate_window
    _wait(lambda: handler.stats()["edits_sent"] >= 2, 10)
    time.sleep(window + 0.5)  # quiet for a window: the last edit says so
    _wait(lambda: handler.stats()["queue_depth"] == 0, 10)
    if fake is None:
        return
    for message in fake.messages:
        shown = fake.message(message.message_id)
        title = str(shown.embeds[0].get("title", "")) if shown and shown.embeds else ""
        if shown is not None and title.startswith("payment gateway"):
            first_line = str(shown.embeds[0].get("description", "")).split("\n", 1)[0]
            narrate(f"a reader sees one message, edited {counted(shown.edits, 'time')}: {title!r}")
            # Discord's markup as a terminal reader would see it in Discord: times, no **.
            narrate(f"  {readable_times(first_line.replace('**', ''), time.time())}")
    for post in fake.threads:
        narrate(f"forum post opened: {post.name!r} (Discord's 220001 taught it: a forum)")


def _deep(depth: int) -> None:
    if depth == 0:
        raise RecursionError("maximum pipeline depth exceeded while pricing the basket")
    _deep(depth - 1)


def _wait(condition: Callable[[], bool], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def summary_lines(report: DemoReport) -> list[str]:
    """The summary people read at the end of the demo."""
    s = report.stats
    lines = [
        f"records emitted        {s['emitted']}",
        f"delivered              {s['delivered'] + s['redelivered']}",
        f"messages sent          {s['messages_sent']}",
        f"embeds per message     {s['embeds_per_message']}",
        f"records per message    {s['records_per_message']}",
        f"aggregated (storms)    {s['aggregated']}",
        f"edits (incidents)      {s['edits_sent']}",
        f"forum posts            {s['forum_posts']}",
        f"retried                {s['retried']}",
        f"429s received          {report.received_429}",
        f"dead-lettered          {s['dead_lettered']}",
        f"redelivered            {s['redelivered']}",
        f"kept as dead letters   {s['dead_letters_kept']}",
        f"lost                   {report.lost}",
        f"took                   {report.seconds:.1f}s",
        "",
    ]
    if report.kept_store:
        lines += [
            f"history and dead letters: {report.store}",
            f"browse them: discord-logging history --store {report.store}",
            f"             discord-logging stats --store {report.store}",
        ]
    else:
        lines.append(
            "the demo's store was a temporary directory, now deleted (--store PATH keeps it)"
        )
    return lines


def register(commands: Any) -> None:
    """Add the ``demo`` subcommand."""
    parser = commands.add_parser(
        "demo",
        help="play a compressed minute of an application's life against a local FakeDiscord",
        description="Configure DiscordHandler through dictConfig and play six alert types, a "
        "long traceback, a storm, an incident kept current by edits, a forum post, an "
        "@everyone attempt, a 100 KB message, an outage and a rate-limit squeeze. Exit 0 only "
        "when nothing was lost (and, with --real, when something arrived). The store is a "
        "temporary directory, deleted at the end, unless --store is given.",
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
        lost = f"{counted(report.lost, 'record')} {'was' if report.lost == 1 else 'were'} lost"
        say(f"discord-logging demo: {lost}", sys.stderr)
        return 1
    if args.real and not report.arrived:
        say(
            "discord-logging demo: nothing arrived at Discord (every record was kept as a dead "
            "letter): run `discord-logging check --ping` to see why",
            sys.stderr,
        )
        return 1
    return 0
