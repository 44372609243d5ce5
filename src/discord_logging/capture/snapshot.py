"""LogRecord -> Notification, in the caller's thread: format once, keep only plain data.

This is the only work :meth:`DiscordHandler.emit` does besides routing; it must stay cheap and
must never raise (a message whose ``%``-args do not fit still becomes a readable alert).
"""

from __future__ import annotations

import hashlib
import logging
import socket
import traceback
from collections.abc import Callable, Iterable
from typing import Any, Final, NamedTuple

from ..notification import Notification
from ..redaction import redact

# Attributes every LogRecord has; anything else on a record came from ``extra=``.
_STANDARD: Final = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}
# Extras the library reads itself: the routing, the user's grouping key, the record's link
# buttons (and asyncio's task name, on every record since Python 3.12).
FINGERPRINT_KEY: Final = "fingerprint"
BUTTONS_KEY: Final = "buttons"
_HIDDEN_EXTRAS: Final = frozenset({"alert_type", "taskName", FINGERPRINT_KEY, BUTTONS_KEY})
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


class RecordSnapshot(NamedTuple):
    """What ``emit`` keeps of a record: formatted text and plain values, nothing live.

    Built in the caller's thread, so it is a bare tuple; ids, titles and fingerprints are
    derived on the worker (:func:`to_notification`)."""

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
    group: str = ""  # the user's grouping key, extra={"fingerprint": ...}
    buttons: tuple[tuple[str, str], ...] = ()  # extra={"buttons": ...}, (label, url) pairs


def snapshot(
    record: logging.LogRecord, alert_type: str, formatter: logging.Formatter
) -> RecordSnapshot:
    """Everything the alert needs from ``record``, formatted once, in the caller's thread."""
    exc_type = None
    if record.exc_info and record.exc_info[0] is not None:
        exc_type = record.exc_info[0].__name__
    attributes = record.__dict__
    extra_keys = attributes.keys() - _STANDARD
    group = attributes.get(FINGERPRINT_KEY) if extra_keys else None
    buttons = attributes.get(BUTTONS_KEY) if extra_keys else None
    return RecordSnapshot(
        alert_type,
        record_message(record),
        record.levelname,
        record.levelno,
        record.name,
        record.created,
        record.process,
        record.processName,
        record.thread,
        record.threadName,
        record.pathname,
        record.lineno,
        record.funcName,
        _extras(attributes, extra_keys) if extra_keys else (),
        exception_text(record, formatter),
        exc_type,
        record.msg if isinstance(record.msg, str) else type(record.msg).__name__,
        _safe_text(group, str)[:GROUP_LIMIT] if group is not None else "",
        record_buttons(buttons) if buttons is not None else (),
    )


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


def to_notification(
    snap: RecordSnapshot,
    fingerprint_: str | None = None,
    samples: Iterable[tuple[float, str]] = (),
) -> Notification:
    """The Notification for a snapshot (on the worker thread); tokens in the text redacted,
    so neither Discord, the history nor the dead letters ever hold one. ``samples`` are a
    storm's ``(created, message)`` records (see :class:`~.aggregation.Release`), redacted too."""
    message = scrub(snap.message)
    first_line = message.split("\n", 1)[0]
    title = first_line if len(first_line) <= TITLE_LIMIT else first_line[: TITLE_LIMIT - 1] + "…"
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
        buttons=tuple((scrub(label), scrub(url)) for label, url in snap.buttons),
    )


def _extras(attributes: dict[str, Any], keys: Iterable[str]) -> tuple[tuple[str, str], ...]:
    pairs = []
    for key in keys:
        if key in _HIDDEN_EXTRAS or key.startswith("_"):
            continue
        value = attributes[key]
        text = value if isinstance(value, str) else _safe_text(value, repr)
        pairs.append((str(key), text[:EXTRA_VALUE_LIMIT]))
    return tuple(sorted(pairs))


def formatted_traceback(exc: BaseException) -> str:
    """Format an exception the way logging does, for the non-logging API."""
    return "".join(traceback.format_exception(exc)).rstrip("\n")
