"""Records that loguru and structlog hand to logging, read for what they say.

* structlog's ``ProcessorFormatter.wrap_for_formatter`` passes the event dict itself as
  ``record.msg``: its ``event`` is the title, its other keys the fields, its ``exc_info``
  the traceback. (``render_to_log_kwargs`` makes an ordinary record: nothing to do here.)
* loguru's ``logger.add(handler)`` (its ``StandardSink``) passes text already formatted with
  loguru's format and its traceback appended, what ``bind()`` added as one ``extra`` dict, and
  ``exc_text = "\\n"`` so that logging's formatters do not append the traceback again.

Pure and cheap: caller's thread.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping
from types import TracebackType
from typing import Any, Final

ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None]

# Keys of a structlog event dict that are not fields: the title, what the embed shows anyway
# (level, logger, time, and the place and process CallsiteParameterAdder adds), the exception
# and stack (the traceback section).
EVENT_HIDDEN: Final = frozenset(
    {"event", "level", "logger", "timestamp", "exc_info", "exception", "stack", "stack_info"}
    | {"pathname", "filename", "module", "func_name", "lineno"}
    | {"thread", "thread_name", "process", "process_name"}
)
_EVENT_EXCEPTION_KEYS: Final = ("exc_info", "exception", "stack", "stack_info")
# loguru's default format begins "{time:YYYY-MM-DD HH:mm:ss.SSS} | {level: <8} | " then
# "{name}:{function}:{line} - {message}": the time is 23 characters wide.
_LOGURU_TIME_WIDTH: Final = 23
_TRACEBACK_START: Final = "\nTraceback (most recent call last):"
LOGURU_NO_TRACEBACK: Final = "\n"  # the exc_text loguru sets when it appended the traceback


def event_of(record: logging.LogRecord) -> dict[str, Any] | None:
    """The structlog event dict a record carries as its message, if it does."""
    msg = record.msg
    return msg if type(msg) is dict and "event" in msg else None


def bound_of(attributes: Mapping[str, Any]) -> dict[str, Any] | None:
    """What loguru's ``bind()`` / ``contextualize()`` put on a record, if it is loguru's."""
    bound = attributes.get("extra")
    return bound if type(bound) is dict else None


def event_title(event: Mapping[str, Any]) -> str:
    """The event's text (``log.error("payment declined", ...)``: "payment declined")."""
    title = event.get("event")
    if isinstance(title, str):
        return title
    try:
        return str(title)
    except Exception:  # noqa: BLE001 - a hostile object still gives an alert
        return f"<unprintable {type(title).__name__}>"


def event_place(event: Mapping[str, Any]) -> tuple[str, int, str | None] | None:
    """Where the event was logged, as ``CallsiteParameterAdder`` found it: ``(pathname,
    lineno, func_name)``. The record's own place is structlog's code when the logging logger
    was not made by ``structlog.stdlib.LoggerFactory``."""
    pathname, lineno, func_name = event.get("pathname"), event.get("lineno"), event.get("func_name")
    if isinstance(pathname, str) and isinstance(lineno, int):
        return pathname, lineno, func_name if isinstance(func_name, str) else None
    return None


def event_exception(record: logging.LogRecord, event: Mapping[str, Any]) -> ExcInfo | None:
    """The exception of a structlog event: the record's, else the event's ``exc_info``
    (``True``, as ``log.exception`` sets it, is the exception being handled)."""
    info = record.exc_info
    if info and info[0] is not None and info[1] is not None:
        return info
    value = event.get("exc_info")
    if value is True:
        current = sys.exc_info()
        return current if current[0] is not None else None
    if isinstance(value, BaseException):
        return type(value), value, value.__traceback__
    if isinstance(value, tuple) and len(value) == 3 and isinstance(value[1], BaseException):
        return value
    return None


def event_texts(event: Mapping[str, Any]) -> str | None:
    """A traceback or stack the processors already rendered (``format_exc_info`` leaves it as
    ``exception``, ``StackInfoRenderer`` as ``stack``)."""
    parts = [event[key] for key in ("exception", "stack") if isinstance(event.get(key), str)]
    return "\n".join(parts) or None


def without_exception(event: dict[str, Any]) -> dict[str, Any] | None:
    """The event without its exception and stack, for the formatter; None if it has none."""
    if not any(key in event for key in _EVENT_EXCEPTION_KEYS):
        return None
    return {key: value for key, value in event.items() if key not in _EVENT_EXCEPTION_KEYS}


def loguru_text(record: logging.LogRecord, text: str) -> tuple[str, str | None]:
    """loguru's text without its default format's prefix (time, level, place: the embed has
    them), and the traceback it appended, apart: ``(message, traceback or None)``.

    Under a format of the user's own, the text is kept as that format made it."""
    prefix = f" | {record.levelname:<8} | {record.name}:{record.funcName}:{record.lineno} - "
    start = _LOGURU_TIME_WIDTH + len(prefix)
    if text[_LOGURU_TIME_WIDTH:start] == prefix:
        text = text[start:]
    if record.exc_text != LOGURU_NO_TRACEBACK:  # loguru appended no traceback
        return text, None
    cut = text.find(_TRACEBACK_START)
    if cut < 0:  # an exception without a traceback: loguru's one line stays in the message
        return text, None
    return text[:cut], text[cut + 1 :].rstrip("\n")
