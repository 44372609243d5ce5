"""A notification from a ``send()`` call: notifying without a log record."""

from __future__ import annotations

import time
from collections.abc import Mapping

from ..alerts import normalize_alert_type
from ..notification import Notification
from .snapshot import HOST, formatted_traceback, scrub
from .tracing import SPAN_ID_DIGITS, TRACE_ID_DIGITS, current_trace_ids, hex_id


def build_notification(
    alert_type: str,
    title: str,
    message: str = "",
    *,
    color: int | None = None,
    fields: Mapping[str, object] | None = None,
    exc: BaseException | None = None,
    level: str = "INFO",
    levelno: int = 20,
    logger: str = "",
) -> Notification:
    """A notification for code that notifies without logging; the OpenTelemetry span active
    here, if any, gives its trace and span ids."""
    kind = normalize_alert_type(alert_type)
    trace_id, span_id = current_trace_ids()
    return Notification(
        alert_type=kind,
        title=scrub(title),
        message=scrub(message or title),
        level=level,
        levelno=levelno,
        logger=logger,
        created=time.time(),
        host=HOST,
        fields=tuple((str(k), scrub(str(v))) for k, v in (fields or {}).items()),
        exc_text=scrub(formatted_traceback(exc)) if exc is not None else None,
        exc_type=type(exc).__name__ if exc is not None else None,
        color=color,
        trace_id=hex_id(trace_id, TRACE_ID_DIGITS),
        span_id=hex_id(span_id, SPAN_ID_DIGITS),
    )
