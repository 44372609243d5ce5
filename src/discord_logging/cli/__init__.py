"""The ``discord-logging`` command. Exit codes: 0 ok, 1 the operation failed, 2 usage error,
3 configuration error. Nothing it prints ever contains a webhook token."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from .. import __version__
from ..errors import DiscordLoggingError
from ..redaction import redact
from ..wording import write_line
from . import check, demo, fake_discord, flush, history, mute, send, stats
from . import dead_letter_commands as deadletters
from ._common import STORE_HELP
from ._common import Progress as Progress  # re-exported: the store commands' progress callback
from ._common import moment as moment  # re-exported: their --since/--until time argument type

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_CONFIG = 3

COMMANDS = (
    check,
    send,
    history,
    deadletters,
    flush,
    stats,
    mute,
    mute.UNMUTE,
    mute.MUTES,
    demo,
    fake_discord,
)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand registered."""
    parser = argparse.ArgumentParser(
        prog="discord-logging",
        description="Operate discord-logging: check the configuration, browse what was sent, "
        "inspect and redeliver dead letters.",
        epilog="Exit codes: 0 ok, 1 the operation failed, 2 usage error, 3 configuration error. "
        "--store and --json may come before or after the command name.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    # Global options (git/kubectl style): accepted here and after the command name; the
    # commands' copies default to SUPPRESS so they never overwrite a value given here.
    parser.add_argument("--store", metavar="PATH", type=Path, default=None, help=STORE_HELP)
    parser.add_argument(
        "--json", action="store_true", default=False, help="print JSON (commands that print data)"
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in COMMANDS:
        module.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.run(args)
    except DiscordLoggingError as exc:
        write_line(f"discord-logging: {redact(str(exc))}")
        return EXIT_CONFIG
    except KeyboardInterrupt:
        write_line("discord-logging: interrupted")
        return EXIT_FAILED
    except BrokenPipeError:
        return _reader_gone()
    try:
        sys.stdout.flush()  # a pipe closed after the last write surfaces here
    except BrokenPipeError:
        return _reader_gone()
    return code


def _reader_gone() -> int:
    """The reader of stdout went away (``history --json | head -1``): what it read is all it
    wanted, so exit 0 quietly, like git and kubectl. stdout is pointed at /dev/null so the
    interpreter's own flush at exit does not complain (Python docs, "Note on SIGPIPE")."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
