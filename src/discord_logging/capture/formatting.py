"""The handler's own Formatter, when one is set: its output becomes the alert's message.

Runs on the caller's thread, as every handler's formatter does. The exception and the stack
are left out of the formatted text, because the embed shows them once, in its traceback
section; the title and the fields come from the record itself, not from the formatted line.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any, Final

# Formats that say nothing the embed does not: the bare message, and logging's default,
# which ``logging.basicConfig(handlers=[...])`` puts on every handler it is given.
_UNCHOSEN_FORMATS: Final = frozenset({"%(message)s", logging.BASIC_FORMAT})
# structlog's ConsoleRenderer colours its output by default (ANSI SGR sequences): a Discord
# embed would show them as "[2m...[0m" debris.
_ANSI: Final = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def chosen_formatter(formatter: logging.Formatter | None) -> logging.Formatter | None:
    """The handler's formatter, or None when it is only logging's default: a plain
    ``logging.Formatter`` of ``%(message)s`` or ``%(levelname)s:%(name)s:%(message)s``."""
    if formatter is None or (
        type(formatter) is logging.Formatter and formatter._fmt in _UNCHOSEN_FORMATS
    ):
        return None
    return formatter


def formatted_message(
    formatter: logging.Formatter,
    record: logging.LogRecord,
    message: str,
    *,
    msg: str | Mapping[str, Any] | None = None,
) -> str:
    """``formatter.format(record)`` without the exception and the stack; never raises: a
    formatter that fails gives ``message`` (the record's own text) with a note saying so.

    ``msg`` replaces the record's message in what the formatter sees (loguru's text without
    its own format, a structlog event without its exception keys). The record itself is not
    changed beyond what any formatter does (``message``, ``asctime``)."""
    target = record
    if msg is not None or record.exc_info or record.exc_text or record.stack_info:
        target = _copy(record)
        target.exc_info = target.exc_text = target.stack_info = None
        if msg is not None:
            target.msg, target.args = msg, ()
    try:
        return formatter.format(target)
    except Exception as exc:  # noqa: BLE001 - a broken formatter must not cost the alert
        return f"{message} (the handler's formatter failed: {type(exc).__name__})"


def _copy(record: logging.LogRecord) -> logging.LogRecord:
    """A shallow copy: other handlers still see the record as it was."""
    clone: logging.LogRecord = object.__new__(type(record))
    clone.__dict__.update(record.__dict__)
    return clone


def strip_ansi(text: str) -> str:
    """``text`` without terminal colour sequences."""
    return _ANSI.sub("", text) if "\x1b" in text else text
