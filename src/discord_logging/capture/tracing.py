"""OpenTelemetry trace and span ids of a record, and the link to its trace.

Where the ids come from, first found wins:

1. the record's ``otelTraceID`` / ``otelSpanID``, set by opentelemetry-instrumentation-logging
   (``LoggingInstrumentor().instrument(inject_trace_context=True)`` or
   ``set_logging_format=True``); ``"0"`` there means "no span";
2. else, when the application has imported ``opentelemetry.trace``, the span active where
   the record was logged (the ids live in a context variable: only the caller's thread can
   read them, so this runs in ``emit``). Never imported by this library: an application
   without OpenTelemetry pays one dictionary lookup.

The link is ``DISCORD_TRACE_URL_TEMPLATE`` with ``{trace_id}`` and ``{span_id}`` filled in.
"""

from __future__ import annotations

import string
import sys
from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import quote

from ..wording import plural

if TYPE_CHECKING:
    from ..notification import Notification

OTEL_TRACE_MODULE: Final = "opentelemetry.trace"
TRACE_ATTRIBUTE: Final = "otelTraceID"
SPAN_ATTRIBUTE: Final = "otelSpanID"
# The instrumentor's attributes, shown as the Trace and Span fields rather than as extras.
OTEL_ATTRIBUTES: Final = frozenset(
    {TRACE_ATTRIBUTE, SPAN_ATTRIBUTE, "otelTraceSampled", "otelServiceName"}
)
_NO_SPAN: Final = ("", "0", None)
PLACEHOLDERS: Final = ("trace_id", "span_id")
TEMPLATE_MAX: Final = 512
_SAMPLE_IDS: Final = {"trace_id": "0af7651916cd43dd8448eb211c80319c", "span_id": "b7ad6b7169203331"}

# A span's ids are numbers until the worker formats them (hex_id): the caller pays less.
Ids = tuple[str | int | None, str | int | None]
_NONE: Final[Ids] = (None, None)
TRACE_ID_DIGITS: Final = 32
SPAN_ID_DIGITS: Final = 16


def record_trace_ids(attributes: Mapping[str, Any], extra_keys: frozenset[str] | set[str]) -> Ids:
    """``(trace_id, span_id)`` of a record (see the module's docstring); never raises."""
    if TRACE_ATTRIBUTE in extra_keys:
        trace_id = attributes.get(TRACE_ATTRIBUTE)
        if trace_id in _NO_SPAN:
            return _NONE
        span_id = attributes.get(SPAN_ATTRIBUTE)
        return str(trace_id), None if span_id in _NO_SPAN else str(span_id)
    return current_trace_ids()


def current_trace_ids() -> Ids:
    """``(trace_id, span_id)`` of the span active here, if the application uses OpenTelemetry
    (numbers: :func:`hex_id` writes them)."""
    trace = sys.modules.get(OTEL_TRACE_MODULE)
    if trace is None:
        return _NONE
    try:
        context = trace.get_current_span().get_span_context()
        if not context.is_valid:
            return _NONE
        return context.trace_id, context.span_id
    except Exception:  # noqa: BLE001 - a broken tracer never costs the alert
        return _NONE


def hex_id(value: str | int | None, digits: int) -> str | None:
    """An id as OpenTelemetry writes it: lowercase hex, zero-padded (a text id as it is)."""
    return format(value, f"0{digits}x") if isinstance(value, int) else value


def trace_url(template: str, trace_id: str, span_id: str | None) -> str:
    """The template with the ids filled in, each quoted for a URL path or query."""
    return template.format(trace_id=quote(trace_id, safe=""), span_id=quote(span_id or "", safe=""))


def with_trace_url(notification: Notification, template: str | None) -> Notification:
    """``notification`` with its link to the trace, when DISCORD_TRACE_URL_TEMPLATE is set and
    it has a trace id: rendered once, so the embed, the history and the dead letters all carry
    the same link."""
    if template is None or notification.trace_id is None or notification.trace_url:
        return notification
    link = trace_url(template, notification.trace_id, notification.span_id)
    return replace(notification, trace_url=link)


def check_trace_url_template(value: str) -> str:
    """``value`` if it is a usable link template; ValueError saying what is wrong otherwise."""
    value = value.strip()
    scheme = value.partition("://")[0].lower()
    if scheme not in ("http", "https") or any(c.isspace() or not c.isprintable() for c in value):
        raise ValueError(f"{value!r} is not an http:// or https:// URL")
    if len(value) > TEMPLATE_MAX:
        raise ValueError(f"is {len(value)} characters long, more than {TEMPLATE_MAX}")
    try:
        names = {name for _, name, _, _ in string.Formatter().parse(value) if name is not None}
    except ValueError as exc:
        raise ValueError(f"{value!r} is not a template: {exc}") from None
    unknown = sorted(names - set(PLACEHOLDERS))
    if unknown:
        shown = ", ".join("{" + name + "}" for name in unknown)
        what = plural(len(unknown), "an unknown placeholder", "unknown placeholders")
        raise ValueError(f"{value!r} has {what}: {shown}")
    if "trace_id" not in names:
        raise ValueError(f"{value!r} has no {{trace_id}} placeholder")
    try:
        trace_url(value, _SAMPLE_IDS["trace_id"], _SAMPLE_IDS["span_id"])
    except (ValueError, IndexError, KeyError) as exc:
        raise ValueError(f"{value!r} is not a template: {exc}") from None
    return value
