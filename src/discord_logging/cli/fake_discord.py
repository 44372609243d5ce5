"""``discord-logging fake-discord``: FakeDiscord as a local server for other processes (a
uvicorn or gunicorn app, a Celery worker, a test suite in any language), in the foreground
until SIGINT or SIGTERM.

stdout holds only the ``DISCORD_WEBHOOK_*`` and ``DISCORD_ALLOWED_HOSTS`` lines, so it can be
redirected into an env file; what the fake serves and records is said on stderr. The URLs'
tokens are the fake's own, fixed (``fake-<type>-token``): they open nothing but this fake,
so they are printed whole.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..wording import counted, write_line
from . import _common as common
from .output import emit_json, say

if TYPE_CHECKING:  # the server loads when the command runs: `--help` stays fast
    from ..testing._local import FailPlan


def _fail(text: str) -> FailPlan:
    from ..testing._local import parse_fail

    try:
        return parse_fail(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _port(text: str) -> int:
    value = int(text) if text.strip().isdigit() else -1
    if not 0 <= value <= 65_535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port (0-65535; 0: a free one)")
    return value


def register(commands: Any) -> None:
    """Add the ``fake-discord`` subcommand."""
    parser = commands.add_parser(
        "fake-discord",
        help="run FakeDiscord (a local Discord webhook server) for other processes' tests",
        description="Run FakeDiscord on 127.0.0.1 in the foreground until Ctrl-C or SIGTERM: "
        "it validates, rate limits and answers like Discord's webhooks. Prints "
        "DISCORD_WEBHOOK_* and DISCORD_ALLOWED_HOSTS lines (stdout, ready for an env file); "
        "lists what it received at /fake/messages (JSON) and /fake (a page).",
        epilog="Exit codes: 0 stopped by a signal, 1 the port could not be bound or the "
        "record file written, 2 usage error. See docs/testing.md.",
    )
    parser.add_argument(
        "--port", type=_port, default=0, help="port on 127.0.0.1 (default 0: a free one)"
    )
    parser.add_argument(
        "--webhooks",
        type=common.positive_int,
        default=1,
        metavar="N",
        help="webhooks for the first N alert types: general, error, critical, monitoring, "
        "security, tracklist (default 1: general, which the others fall back to)",
    )
    parser.add_argument(
        "--forum", action="store_true", help="the webhooks post into forum channels"
    )
    parser.add_argument(
        "--fail",
        type=_fail,
        action="append",
        default=[],
        metavar="STATUS:WHEN",
        help="fail posts: 503:30s (every post, for 30 s from the start; outages follow each "
        "other), 500:3 (the next 3 posts), 429:5 (the next 5, rate limited); repeatable",
    )
    parser.add_argument(
        "--record",
        type=Path,
        metavar="FILE",
        help="append every message received to FILE as JSON lines",
    )
    common.json_option(parser, "print the environment as JSON instead of lines")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Serve until SIGINT or SIGTERM."""
    from ..testing._local import ALERT_TYPES, LocalFakeDiscord

    if args.webhooks > len(ALERT_TYPES):
        common.error(f"--webhooks {args.webhooks}: at most {len(ALERT_TYPES)} (one per type)")
        return 2
    if args.record is not None:
        try:
            args.record.open("a", encoding="utf-8").close()
        except OSError as exc:
            common.error(f"--record {args.record}: cannot be written ({exc.strerror})")
            return 1
    fake = LocalFakeDiscord(
        port=args.port, webhooks=args.webhooks, forum=args.forum, record=args.record
    )
    try:
        fake.start()
    except OSError as exc:
        common.error(
            f"--port {args.port}: cannot listen on 127.0.0.1:{args.port} ({exc.strerror}); "
            "choose another port, or --port 0 for a free one"
        )
        return 1
    stop = threading.Event()
    previous = {
        signum: signal.signal(signum, lambda *_: stop.set())
        for signum in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        fake.plan(args.fail)
        lines = fake.environment()
        if args.json:
            emit_json(dict(line.split("=", 1) for line in lines))
        else:
            for line in lines:  # not redacted: the fake's own tokens (module docstring)
                write_line(line, sys.stdout)
        sys.stdout.flush()
        where = f"http://{fake.host}"
        say(f"fake-discord: serving on {where}; received messages: {where}/fake/messages "
            f"(JSON), {where}/fake (page); Ctrl-C to stop", sys.stderr)  # fmt: skip
        while not stop.wait(0.5):
            pass
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        fake.stop()
    recorded = f", recorded in {args.record}" if args.record is not None else ""
    say(f"fake-discord: stopped; {counted(len(fake.messages), 'message')} received{recorded}",
        sys.stderr)  # fmt: skip
    return 0
