"""LogRecord -> Notification, in the caller's thread: format once, keep only plain data.

This is the only work :meth:`DiscordHandler.emit` does besides routing; it must stay cheap and
must never raise (a message whose ``%``-args do not fit still becomes a readable alert).
"""

from __future__ import annotations

import hashlib
import logging
import socket
import traceback
from typing import Any, Final

from .notification import Notification

# Attributes every LogRecord has; anything else on a record came from ``extra=``.
_STANDARD: Final = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}
_HIDDEN_EXTRAS: Final = frozenset({"alert_type", "taskName"})
TITLE_LIMIT: Final = 256
EXTRA_VALUE_LIMIT: Final = 1024
HOST: Final = socket.gethostname()


def record_message(record: logging.LogRecord) -> str:
    """``record.getMessage()``, or the template and args shown side by side when they don't fit."""
    try:
        return record.getMessage()
    except Exception as exc:  # noqa: BLE001 - a bad log call must still produce an alert
        return f"{record.msg!s} (could not format args {record.args!r}: {type(exc).__name__})"


def exception_text(record: logging.LogRecord, formatter: logging.Formatter) -> str | None:
    """The formatted exception (and stack) of ``record``, computed once."""
    text = record.exc_text
    if not text and record.exc_info and record.exc_info[0] is not None:
        try:
            text = formatter.formatException(record.exc_info)
        except Exception as exc:  # noqa: BLE001
            text = f"(could not format the exception: {type(exc).__name__})"
    if record.stack_info:
        text = f"{text}\n{record.stack_info}" if text else record.stack_info
    return text or None


def fingerprint(*parts: object) -> str:
    """Identity of "the same problem again", for storm aggregation. Stable across processes."""
    key = "\x1f".join("" if part is None else str(part) for part in parts)
    return hashlib.blake2b(key.encode("utf-8", "replace"), digest_size=8).hexdigest()


def snapshot(
    record: logging.LogRecord, alert_type: str, formatter: logging.Formatter
) -> Notification:
    """A Notification holding everything the alert needs from ``record``, and nothing live."""
    message = record_message(record)
    exc_text = exception_text(record, formatter)
    exc_type = None
    if record.exc_info and record.exc_info[0] is not None:
        exc_type = record.exc_info[0].__name__
    first_line = message.split("\n", 1)[0]
    title = first_line if len(first_line) <= TITLE_LIMIT else first_line[: TITLE_LIMIT - 1] + "…"
    template = record.msg if isinstance(record.msg, str) else type(record.msg).__name__
    where = f"{record.pathname}:{record.lineno}"
    return Notification(
        alert_type=alert_type,
        title=title or record.levelname,
        message=message,
        level=record.levelname,
        levelno=record.levelno,
        logger=record.name,
        created=record.created,
        host=HOST,
        process=record.process,
        process_name=record.processName,
        thread=record.thread,
        thread_name=record.threadName,
        pathname=record.pathname,
        lineno=record.lineno,
        func_name=record.funcName,
        extra=_extras(record.__dict__),
        exc_text=exc_text,
        exc_type=exc_type,
        fingerprint=fingerprint(alert_type, record.name, record.levelno, template, exc_type, where),
    )


def _extras(attributes: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    pairs = []
    for key, value in attributes.items():
        if key in _STANDARD or key in _HIDDEN_EXTRAS or key.startswith("_"):
            continue
        try:
            text = value if isinstance(value, str) else repr(value)
        except Exception:  # noqa: BLE001 - a hostile __repr__ must not lose the record
            text = f"<unrepresentable {type(value).__name__}>"
        pairs.append((str(key), text[:EXTRA_VALUE_LIMIT]))
    return tuple(pairs)


def formatted_traceback(exc: BaseException) -> str:
    """Format an exception the way logging does, for the non-logging API."""
    return "".join(traceback.format_exception(exc)).rstrip("\n")
