"""The ``discord-logging`` command. Exit codes: 0 ok, 1 the operation failed, 2 usage error,
3 configuration error. Nothing it prints ever contains a webhook token."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from ..errors import DiscordLoggingError
from ..redaction import redact
from . import check, deadletters, demo, flush, history, send, stats

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_CONFIG = 3

COMMANDS = (check, send, history, deadletters, flush, stats, demo)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand registered."""
    parser = argparse.ArgumentParser(
        prog="discord-logging",
        description="Operate discord-logging: check the configuration, browse what was sent, "
        "inspect and redeliver dead letters.",
        epilog="Exit codes: 0 ok, 1 the operation failed, 2 usage error, 3 configuration error.",
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
        print(f"discord-logging: {redact(str(exc))}", file=sys.stderr)
        return EXIT_CONFIG
    except KeyboardInterrupt:
        print("discord-logging: interrupted", file=sys.stderr)
        return EXIT_FAILED
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
