"""LogRecord -> Notification, in the caller's thread: format once, keep only plain data.

This is the only work :meth:`DiscordHandler.emit` does besides routing; it must stay cheap and
must never raise (a message whose ``%``-args do not fit still becomes a readable alert).
Records of structlog and loguru are read by :mod:`.structured`, the handler's own Formatter
is applied by :mod:`.formatting`, OpenTelemetry ids are found by :mod:`.tracing`.
"""

from __future__ import annotations

import hashlib
import logging
import socket
import sys
import traceback
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final, NamedTuple

from ..notification import Notification, new_id
from ..redaction import redact
from . import structured
from .formatting import chosen_formatter, formatted_message, strip_ansi
from .tracing import (
    OTEL_ATTRIBUTES,
    OTEL_TRACE_MODULE,
    SPAN_ID_DIGITS,
    TRACE_ID_DIGITS,
    hex_id,
    record_trace_ids,
)

# Attributes every LogRecord has; anything else on a record came from ``extra=``.
_STANDARD: Final = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}
# Extras the library reads itself: the routing, the user's grouping key, the record's link
# buttons (and asyncio's task name, on every record since Python 3.12), and OpenTelemetry's ids.
FINGERPRINT_KEY: Final = "fingerprint"
BUTTONS_KEY: Final = "buttons"
_HIDDEN_EXTRAS: Final = (
    frozenset({"alert_type", "taskName", FINGERPRINT_KEY, BUTTONS_KEY}) | OTEL_ATTRIBUTES
)
GROUP_LIMIT: Final = 200  # characters of a user's grouping key that count
BUTTONS_KEPT: Final = 10  # a record's buttons read (at most 5 are shown)
TITLE_LIMIT: Final = 256
EXTRA_VALUE_LIMIT: Final = 1024
HOST: Final = socket.gethostname()


def record_message(record: logging.LogRecord) -> str:
    """``record.getMessage()``, or the template and args shown side by side when they don't fit."""
    try:
        return record.getMessage()
    except Exception as exc:  # noqa: BLE001 - a bad log call must still produce an alert
        template, args = _safe_text(record.msg, str), _safe_text(record.args, repr)
        return f"{template} (could not format args {args}: {type(exc).__name__})"


def _safe_text(value: object, convert: Callable[[object], str]) -> str:
    """``str()``/``repr()`` that cannot raise: a hostile object becomes a placeholder."""
    try:
        return convert(value)
    except Exception:  # noqa: BLE001
        return f"<unprintable {type(value).__name__}>"


def exception_text(record: logging.LogRecord, formatter: logging.Formatter) -> str | None:
    """The formatted exception (and stack) of ``record``, computed once."""
    text = record.exc_text
    if not text and record.exc_info and record.exc_info[0] is not None:
        text = _format_exception(record.exc_info, formatter)
    return _with_stack(text, record.stack_info)


def _format_exception(info: structured.ExcInfo, formatter: logging.Formatter) -> str:
    try:
        return formatter.formatException(info)
    except Exception as exc:  # noqa: BLE001
        return f"(could not format the exception: {type(exc).__name__})"


def _with_stack(text: str | None, stack: str | None) -> str | None:
    if stack:
        text = f"{text}\n{stack}" if text else stack
    return text or None


def fingerprint(*parts: object) -> str:
    """Identity of "the same problem again", for storm aggregation. Stable across processes."""
    key = "\x1f".join("" if part is None else str(part) for part in parts)
    return hashlib.blake2b(key.encode("utf-8", "replace"), digest_size=8).hexdigest()


class RecordSnapshot(NamedTuple):
    """What ``emit`` keeps of a record: formatted text and plain values, nothing live.

    Built in the caller's thread, so it is a bare tuple; ids, titles and fingerprints are
    derived on the worker (:func:`to_notification`). ``message`` is the record's own text
    (the title's source, and what a storm summary samples); ``formatted`` the handler's
    Formatter's output, when it has one."""

    alert_type: str
    message: str
    level: str
    levelno: int
    logger: str
    created: float
    process: int | None
    process_name: str | None
    thread: int | None
    thread_name: str | None
    pathname: str
    lineno: int
    func_name: str | None
    extra: tuple[tuple[str, str], ...]
    exc_text: str | None
    exc_type: str | None
    template: str
    formatted: str | None = None
    trace_id: str | int | None = None
    span_id: str | int | None = None
    group: str = ""  # the user's grouping key, extra={"fingerprint": ...}
    buttons: tuple[tuple[str, str], ...] = ()  # extra={"buttons": ...}, (label, url) pairs


def snapshot(
    record: logging.LogRecord,
    alert_type: str,
    formatter: logging.Formatter,
    message_formatter: logging.Formatter | None = None,
) -> RecordSnapshot:
    """Everything the alert needs from ``record``, formatted once, in the caller's thread.

    ``formatter`` formats exceptions; ``message_formatter`` is the handler's own Formatter,
    if one was set: its output becomes the alert's message (it formats the exception too),
    unless it is only logging's default (:func:`.formatting.chosen_formatter`)."""
    if message_formatter is not None:
        message_formatter = chosen_formatter(message_formatter)
        if message_formatter is not None:
            formatter = message_formatter
    attributes = record.__dict__
    extra_keys = attributes.keys() - _STANDARD
    msg = record.msg
    formatter_msg: Any = None  # what the handler's formatter sees instead of record.msg
    pathname, lineno = record.pathname, record.lineno
    func_name: str | None = record.funcName
    if type(msg) is dict or (extra_keys and type(attributes.get("extra")) is dict):
        (message, template, extra, exc_text, exc_type, place, formatter_msg) = _library_parts(
            record, extra_keys, formatter
        )
        if place is not None:
            pathname, lineno, func_name = place
    else:  # a plain record: the common case, kept short
        message = record_message(record)
        template = msg if isinstance(msg, str) else type(msg).__name__
        extra = _extras(attributes, extra_keys) if extra_keys else ()
        exc_text = exception_text(record, formatter)
        info = record.exc_info
        exc_type = info[0].__name__ if info and info[0] is not None else None
    formatted = None
    if message_formatter is not None:
        formatted = formatted_message(message_formatter, record, message, msg=formatter_msg)
    trace_id = span_id = None
    if extra_keys or OTEL_TRACE_MODULE in sys.modules:
        trace_id, span_id = record_trace_ids(attributes, extra_keys)
    group = attributes.get(FINGERPRINT_KEY) if extra_keys else None
    buttons = attributes.get(BUTTONS_KEY) if extra_keys else None
    return RecordSnapshot(
        alert_type,
        message,
        record.levelname,
        record.levelno,
        record.name,
        record.created,
        record.process,
        record.processName,
        record.thread,
        record.threadName,
        pathname,
        lineno,
        func_name,
        extra,
        exc_text,
        exc_type,
        template,
        formatted,
        trace_id,
        span_id,
        _safe_text(group, str)[:GROUP_LIMIT] if group is not None else "",
        record_buttons(buttons) if buttons is not None else (),
    )


def _exc_type(info: Any) -> str | None:
    return info[0].__name__ if info and info[0] is not None else None


# message, template, extra, exc_text, exc_type, place (None: the record's), formatter_msg
_LibraryParts = tuple[
    str,
    str,
    tuple[tuple[str, str], ...],
    str | None,
    str | None,
    tuple[str, int, str | None] | None,
    Any,
]


def _library_parts(
    record: logging.LogRecord, extra_keys: set[str], formatter: logging.Formatter
) -> _LibraryParts:
    """structlog's event dict (the record's message), or loguru's text and ``bind()`` dict."""
    attributes = record.__dict__
    event = structured.event_of(record)
    if event is not None:
        title = structured.event_title(event)
        extra = _extras(event, event.keys() - structured.EVENT_HIDDEN)
        if extra_keys:
            extra = tuple(sorted(extra + _extras(attributes, extra_keys)))
        exc = structured.event_exception(record, event)
        exc_text = _with_stack(
            _format_exception(exc, formatter) if exc is not None else None,
            structured.event_texts(event) or record.stack_info,
        )
        exc_type = exc[0].__name__ if exc is not None else None
        formatter_msg = structured.without_exception(event)
        return title, title, extra, exc_text, exc_type, structured.event_place(event), formatter_msg
    bound = structured.bound_of(attributes)
    if bound is None:  # a dict message that is no structlog event: an ordinary record
        extra = _extras(attributes, extra_keys)
        exc_text = exception_text(record, formatter)
        exc_type = _exc_type(record.exc_info)
        return record_message(record), "dict", extra, exc_text, exc_type, None, None
    message, exc_text = structured.loguru_text(record, record_message(record))
    if record.exc_text != structured.LOGURU_NO_TRACEBACK:  # an "extra" dict, not loguru's
        exc_text = exception_text(record, formatter)
    extra = tuple(sorted(_extras(bound, bound) + _extras(attributes, extra_keys - {"extra"})))
    return message, message, extra, exc_text, _exc_type(record.exc_info), None, message


def record_buttons(value: object) -> tuple[tuple[str, str], ...]:
    """A record's ``extra={"buttons": ...}`` as plain ``(label, url)`` text pairs: a
    ``{label: url}`` dict, or a list of ``{"label", "url"}`` dicts or pairs. Never raises;
    what is not a button is left out (the rest is checked when rendered)."""
    try:
        if isinstance(value, dict):
            items: list[object] = list(value.items())
        elif isinstance(value, list | tuple):
            items = list(value)
        else:
            return ()
        pairs = []
        for item in items[:BUTTONS_KEPT]:
            pair = (item.get("label"), item.get("url")) if isinstance(item, dict) else item
            if isinstance(pair, list | tuple) and len(pair) == 2:
                label, url = pair
                pairs.append((_safe_text(label, str)[:200], _safe_text(url, str)[:1000]))
        return tuple(pairs)
    except Exception:  # noqa: BLE001 - a strange extra must not stop the record
        return ()


def snapshot_fingerprint(snap: RecordSnapshot) -> str:
    """The storm identity of a snapshot: the user's grouping key
    (``extra={"fingerprint": ...}``) within its alert type when given, else type, logger,
    level, message template, exception and place."""
    if snap.group:
        return fingerprint(snap.alert_type, FINGERPRINT_KEY, snap.group)
    return fingerprint(
        snap.alert_type,
        snap.logger,
        snap.levelno,
        snap.template,
        snap.exc_type,
        f"{snap.pathname}:{snap.lineno}",
    )


def scrub(text: str) -> str:
    """Log text with webhook tokens redacted (someone may log the URL itself)."""
    return redact(text) if "webhooks" in text else text


def scrubbed(snap: RecordSnapshot) -> RecordSnapshot:
    """``snap`` with every text it carries scrubbed as :func:`to_notification` scrubs a
    notification's, for what keeps it on disk (the journal): the template and the grouping
    key too, which a notification keeps only as a fingerprint."""
    return snap._replace(
        message=scrub(snap.message),
        formatted=scrub(snap.formatted) if snap.formatted is not None else None,
        template=scrub(snap.template),
        group=scrub(snap.group),
        extra=tuple((key, scrub(value)) for key, value in snap.extra),
        exc_text=scrub(snap.exc_text) if snap.exc_text else snap.exc_text,
        buttons=tuple((scrub(label), scrub(url)) for label, url in snap.buttons),
    )


def to_notification(
    snap: RecordSnapshot,
    fingerprint_: str | None = None,
    samples: Iterable[tuple[float, str]] = (),
    notification_id: str | None = None,
) -> Notification:
    """The Notification for a snapshot (on the worker thread); tokens in the text redacted,
    so neither Discord, the history nor the dead letters ever hold one. ``samples`` are a
    storm's ``(created, message)`` records (see :class:`~.aggregation.Release`), redacted too.
    ``notification_id``: the id the record was journaled under, if it was."""
    message = scrub(snap.message)
    first_line = message.split("\n", 1)[0]
    title = first_line if len(first_line) <= TITLE_LIMIT else first_line[: TITLE_LIMIT - 1] + "…"
    if snap.formatted is not None:
        message = scrub(strip_ansi(snap.formatted))
    return Notification(
        alert_type=snap.alert_type,
        title=title or snap.level,
        message=message,
        level=snap.level,
        levelno=snap.levelno,
        logger=snap.logger,
        created=snap.created,
        host=HOST,
        process=snap.process,
        process_name=snap.process_name,
        thread=snap.thread,
        thread_name=snap.thread_name,
        pathname=snap.pathname,
        lineno=snap.lineno,
        func_name=snap.func_name,
        extra=tuple((key, scrub(value)) for key, value in snap.extra),
        exc_text=scrub(snap.exc_text) if snap.exc_text else None,
        exc_type=snap.exc_type,
        fingerprint=fingerprint_ if fingerprint_ is not None else snapshot_fingerprint(snap),
        samples=tuple((created, scrub(text)) for created, text in samples),
        trace_id=hex_id(snap.trace_id, TRACE_ID_DIGITS),
        span_id=hex_id(snap.span_id, SPAN_ID_DIGITS),
        buttons=tuple((scrub(label), scrub(url)) for label, url in snap.buttons),
        id=notification_id if notification_id is not None else new_id(),
    )


def _extras(attributes: Mapping[Any, Any], keys: Iterable[Any]) -> tuple[tuple[str, str], ...]:
    """``(name, text)`` of each key shown as a field, sorted by name; never raises."""
    pairs = []
    for key in keys:
        name = key if isinstance(key, str) else _safe_text(key, str)  # a dict's keys may be any
        if name in _HIDDEN_EXTRAS or name.startswith("_"):
            continue
        value = attributes[key]
        text = value if isinstance(value, str) else _safe_text(value, repr)
        pairs.append((name, text[:EXTRA_VALUE_LIMIT]))
    return tuple(sorted(pairs))


def formatted_traceback(exc: BaseException) -> str:
    """Format an exception the way logging does, for the non-logging API."""
    return "".join(traceback.format_exception(exc)).rstrip("\n")
