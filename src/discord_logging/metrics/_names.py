"""The metrics' names, units and what each counts: one table for both backends and the docs.

Names follow OpenTelemetry's conventions for an SDK's own metrics (``otel.sdk.log.created``,
``otel.sdk.processor.log.processed`` with ``error.type``, ``otel.sdk.processor.log.queue.size``
and ``.capacity``) under the library's namespace; Prometheus names are what OpenTelemetry's
Prometheus exporter makes of them (dots to underscores, ``_total`` on counters, ``_seconds``
on a histogram in seconds), so one PromQL query serves both backends.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final


@dataclass(frozen=True)
class Metric:
    """One instrument: its OpenTelemetry name, kind, unit and description."""

    name: str
    kind: str  # "counter", "histogram" or "gauge"
    unit: str
    description: str
    labels: tuple[str, ...] = ()

    @property
    def prometheus_name(self) -> str:
        """The name OpenTelemetry's Prometheus exporter gives it (without ``_total``)."""
        base = self.name.replace(".", "_")
        return base + "_seconds" if self.unit == "s" else base


# What each count of :mod:`discord_logging.stats` (the listeners' ``name``) feeds.
COUNTED: Final[dict[str, Metric]] = {
    "emitted": Metric(
        "discord_logging.record.accepted",
        "counter",
        "{record}",
        "Records the handler accepted (routed, snapshot and handed to the worker).",
        ("alert_type",),
    ),
    "delivered": Metric(
        "discord_logging.record.delivered",
        "counter",
        "{record}",
        "Records Discord accepted, alone or in a message of several.",
        ("alert_type",),
    ),
    "aggregated": Metric(
        "discord_logging.record.aggregated",
        "counter",
        "{record}",
        "Records folded into an incident's message instead of a message of their own.",
        ("alert_type",),
    ),
    "dead_lettered": Metric(
        "discord_logging.record.dead_lettered",
        "counter",
        "{record}",
        "Records kept as dead letters (redeliverable), by reason (error.type).",
        ("alert_type", "error.type"),
    ),
    "dropped": Metric(
        "discord_logging.record.dropped",
        "counter",
        "{record}",
        "Records neither delivered nor kept, by reason (error.type).",
        ("alert_type", "error.type"),
    ),
    "retried": Metric(
        "discord_logging.record.retried",
        "counter",
        "{record}",
        "Records sent again after a retryable answer (5xx, timeout, lost connection, 429).",
    ),
    "request": Metric(
        "discord_logging.request.sent",
        "counter",
        "{request}",
        "Requests that posted a message, by Discord's HTTP status "
        "(http.response.status_code; error.type=no_answer when none came).",
        ("http.response.status_code", "error.type"),
    ),
    "rate_limited": Metric(
        "discord_logging.request.rate_limited",
        "counter",
        "{request}",
        "Requests Discord answered with 429 (the handler waited and retried).",
    ),
    "delivery_seconds": Metric(
        "discord_logging.record.delivery.duration",
        "histogram",
        "s",
        "Seconds from a record being logged to Discord accepting it.",
        ("alert_type",),
    ),
}

# The gauges, read from the live handlers (stats.GAUGE_SOURCES) by key.
GAUGES: Final[dict[str, Metric]] = {
    "queue_depth": Metric(
        "discord_logging.queue.size",
        "gauge",
        "{record}",
        "Records waiting to be sent: hand-off, webhook lanes and in flight.",
    ),
    "queue_capacity": Metric(
        "discord_logging.queue.capacity",
        "gauge",
        "{record}",
        "Records a process may hold in memory; past it they are dropped (error.type=memory_full).",
    ),
    "dead_letters_kept": Metric(
        "discord_logging.dead_letter.kept",
        "gauge",
        "{record}",
        "Dead letters kept now, waiting for redelivery (the store's, shared by its processes).",
    ),
    "open_circuits": Metric(
        "discord_logging.circuit.open",
        "gauge",
        "{webhook}",
        "Webhooks whose circuit breaker is open (sending paused after repeated failures).",
    ),
}

# Delivery latency buckets, in seconds: a record usually goes within a second; retries, 429s
# and outages stretch it to minutes.
LATENCY_BUCKETS: Final = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0)
NO_ANSWER: Final = "no_answer"
