"""Helpers the store commands share: times and durations, opening the store, progress."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import sys
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, TextIO

from ..alerts import normalize_alert_type
from ..redaction import redact
from ..store._exports import ExportRefused
from ..wording import write_line
from .output import say

# The store (diskcache) loads only in commands that use it, so
# that `--help` and argument errors start fast.
if TYPE_CHECKING:
    from ..settings import DiscordSettings
    from ..store import Store

STORE_VARIABLE: Final = "DISCORD_STORE_PATH"
_DURATION: Final = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw])")
_UNIT_SECONDS: Final = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}


def error(message: str) -> None:
    """Print ``discord-logging: message`` on stderr (redacted)."""
    say(f"discord-logging: {message}", sys.stderr)


# -- argument types ---------------------------------------------------------------------------


def moment(text: str, now: Callable[[], float] = time.time) -> float:
    """``30m``/``1h``/``2d``/``1w`` ago, or an ISO-8601 time (UTC unless it says otherwise),
    as a Unix timestamp. An argparse ``type``: a bad value is a usage error (exit 2)."""
    value = text.strip().lower()
    match = _DURATION.fullmatch(value)
    if match:
        return now() - float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    try:
        parsed = datetime.fromisoformat(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is neither a duration (30s, 30m, 1h, 2d, 1w: that long ago) nor an "
            "ISO-8601 time (2024-05-01 or 2024-05-01T12:00:00Z)"
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def alert_type(text: str) -> str:
    """An argparse ``type`` for alert type / webhook names (``errors`` becomes ``error``)."""
    try:
        return normalize_alert_type(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def positive_int(text: str) -> int:
    """An argparse ``type``: a whole number of at least 1."""
    value = int(text) if text.strip().isdigit() else 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of at least 1")
    return value


def positive_float(text: str) -> float:
    """An argparse ``type``: seconds greater than 0."""
    with contextlib.suppress(ValueError):
        if (value := float(text)) > 0:
            return value
    raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds greater than 0")


def utc(timestamp: float | None) -> str:
    """A Unix time as ``2024-05-01T12:00:00Z`` (blank when unknown)."""
    if timestamp is None:
        return ""
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def cut(text: object, width: int) -> str:
    """One line of at most ``width`` characters, ``…`` marking a cut."""
    line = " ".join(str(text or "").split())
    return line if len(line) <= width else line[: width - 1] + "…"


SHORT_ID: Final = 8


def short_ids(ids: Iterable[str]) -> dict[str, str]:
    """Each id cut to its first 8 characters (like git's short ids), longer only where two of
    ``ids`` share those 8; every command that takes an id accepts such a prefix."""
    every = sorted(set(ids))
    short: dict[str, str] = {}
    for i, ident in enumerate(every):
        width = SHORT_ID
        for other in every[max(0, i - 1) : i + 2]:
            if other != ident:
                shared = next(
                    (n for n, (a, b) in enumerate(zip(ident, other, strict=False)) if a != b),
                    min(len(ident), len(other)),
                )
                width = max(width, shared + 1)
        short[ident] = ident[:width]
    return short


# -- the store --------------------------------------------------------------------------------


STORE_HELP: Final = (
    f"the store directory (default: {STORE_VARIABLE}, else the per-user cache directory)"
)


def store_parent() -> argparse.ArgumentParser:
    """A parent parser adding ``--store PATH`` to a command. Its default is SUPPRESS so that a
    ``--store`` given before the command name (on the main parser) is not overwritten."""
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument(
        "--store", metavar="PATH", type=Path, default=argparse.SUPPRESS, help=STORE_HELP
    )
    return parent


def json_option(parser: argparse.ArgumentParser, text: str = "print JSON for scripts") -> None:
    """Add ``--json`` to a command; like ``--store`` it may also come before the command."""
    parser.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help=text)


def configured_store_path() -> Path:
    """The store the application uses: DISCORD_STORE_PATH from the environment or ``.env``
    (read without requiring webhooks), else the per-user default."""
    from dotenv import dotenv_values

    from ..store import default_store_path

    for key, value in os.environ.items():
        if key.upper() == STORE_VARIABLE and value.strip():
            return Path(value)
    dotenv = Path(".env")
    if dotenv.is_file():
        for key, found in dotenv_values(dotenv).items():
            if key.upper() == STORE_VARIABLE and found and found.strip():
                return Path(found)
    return default_store_path()


def store_path(args: argparse.Namespace, settings: DiscordSettings | None = None) -> Path:
    """``--store``, else the configured store."""
    if getattr(args, "store", None) is not None:
        return Path(args.store).expanduser()
    if settings is not None:
        from ..store import default_store_path

        return settings.store_path or default_store_path()
    return configured_store_path()


def read_store(args: argparse.Namespace) -> Store | None:
    """Open the store for a command that only reads it (no settings, no webhooks needed).
    None when there is no store at the path yet (said on stderr): nothing was recorded.
    Raises StoreUnavailable when it exists but cannot be read."""
    from ..store import Store

    path = store_path(args)
    if path.exists() and not path.is_dir():
        raise StoreUnavailable(path, f"{path} is not a directory: pass the store directory")
    if not path.exists():
        error(
            f"no store at {path} yet: nothing has been recorded there. If the application "
            f"uses another one, pass --store PATH or set {STORE_VARIABLE}."
        )
        return None
    store = Store(path)
    if store.degraded:
        raise StoreUnavailable(path)
    return store


def open_store(args: argparse.Namespace, settings: DiscordSettings) -> Store:
    """Open (or create) the store for a command that sends, with the retention settings."""
    from ..store import Store

    path = store_path(args, settings)
    store = Store(
        path,
        retention_days=settings.history_retention_days,
        max_bytes=settings.history_max_bytes,
        export_dir=settings.history_export_dir,
    )
    if store.degraded:
        raise StoreUnavailable(path)
    return store


def close_store(store: Store | None) -> None:
    """Close ``store`` (which waits for a retention pass it started in the background)."""
    if store is not None:
        store.close()


class StoreUnavailable(Exception):
    """The store exists but cannot be used (the Store already explained why on stderr)."""

    def __init__(self, path: Path, why: str = "see the message above") -> None:
        super().__init__(
            f"cannot use the store at {path} ({why}): check that the directory is readable "
            "and writable by this user, or pass --store PATH"
        )


class MissingDirectory(Exception):
    """An export's directory does not exist and ``--parents`` was not given."""

    def __init__(self, directory: Path) -> None:
        super().__init__(
            f"the directory {directory} does not exist: create it, or pass --parents to "
            "create it (mode 0700)"
        )


def parents_option(parser: argparse.ArgumentParser) -> None:
    """Add ``--parents`` (like ``mkdir -p``) and ``--force`` to a command that writes an
    export file."""
    parser.add_argument(
        "--parents",
        action="store_true",
        help="create the export file's missing directories (mode 0700); without it a "
        "missing directory is refused",
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="replace an existing export file of yours (a symbolic link or another user's "
        "file is refused even so)",
    )


def write_jsonl(
    target: str, rows: Iterable[dict[str, Any]], *, parents: bool = False, force: bool = False
) -> tuple[int, list[Path]]:
    """Write ``rows`` as JSON Lines (tokens redacted) to the new file ``target`` (mode 0600;
    an existing one only with ``force``, never through a link or into another user's file:
    ExportRefused), or to stdout for ``-``. A missing directory is created only with
    ``parents`` (else MissingDirectory). Returns how many rows were written and the
    directories created."""
    from ..store._exports import new_export
    from ..store._paths import private_parent

    count = 0
    created: list[Path] = []
    with contextlib.ExitStack() as stack:
        out: TextIO = sys.stdout
        if target != "-":
            path = Path(target).expanduser()
            created = [p for p in reversed(path.parents) if not p.exists()]
            if created and not parents:
                raise MissingDirectory(created[0])
            private_parent(path)  # exports hold message text: directories made 0700
            out = stack.enter_context(new_export(path, force=force))
        for row in rows:
            out.write(redact(json.dumps(row, ensure_ascii=False, default=str)) + "\n")
            count += 1
    return count, created


def exported(what: str, target: str, created: list[Path]) -> None:
    """Say what an export wrote (``what``: "2 dead letters") and which directories it created
    (on stderr when the export went to stdout)."""
    stream = sys.stderr if target == "-" else None
    for directory in created:
        say(f"Created directory {directory}.", stream)
    say(f"Exported {what} to {'stdout' if target == '-' else target}.", stream)


# -- progress ---------------------------------------------------------------------------------


class Progress:
    """A progress callback ``(done, total)``: a bar on a terminal's stderr; otherwise a plain
    line at most every ``interval`` seconds (nothing for a short operation)."""

    WIDTH: Final = 30

    def __init__(self, label: str, stream: TextIO | None = None, *, interval: float = 10.0) -> None:
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.interval = interval
        self._last = time.monotonic()
        self._drawn = False

    def __call__(self, done: int, total: int) -> None:
        if self.tty:
            filled = self.WIDTH * done // total if total else self.WIDTH
            bar = "#" * filled + "." * (self.WIDTH - filled)
            self.stream.write(f"\r{self.label} [{bar}] {done}/{total}")
            self.stream.flush()
            self._drawn = True
            return
        now = time.monotonic()
        if now - self._last >= self.interval:
            self._last = now
            write_line(f"{self.label}: {done}/{total}", self.stream)

    def close(self) -> None:
        """End the bar's line."""
        if self._drawn:
            self.stream.write("\n")
            self.stream.flush()
            self._drawn = False


def guarded(run: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Turn an unusable store or an unwritable output file into a clear message and exit 1."""

    def wrapper(args: argparse.Namespace) -> int:
        try:
            return run(args)
        except BrokenPipeError:
            raise  # the reader went away (| head): main ends quietly
        except (StoreUnavailable, MissingDirectory, ExportRefused) as exc:
            error(str(exc))
        except OSError as exc:
            where = f" {exc.filename}" if exc.filename else ""
            error(
                f"cannot use the file{where}: {exc.strerror or exc}; check the path and its "
                "permissions (an export needs a writable directory)"
            )
        return 1

    wrapper.__doc__ = run.__doc__
    return wrapper
