"""The OpenTelemetry backend: instruments on a meter, fed by the stats listener.

Only the API (``opentelemetry-api``) is needed: without an SDK the global meter provider is a
no-op, and once the application installs one (before or after) the instruments report to it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from opentelemetry import metrics as otel
from opentelemetry.metrics import CallbackOptions, Observation

from .. import __version__
from ._gauges import read_gauges
from ._names import COUNTED, GAUGES, LATENCY_BUCKETS, NO_ANSWER


class OpenTelemetryMetrics:
    """The handler's counters, histogram and gauges on ``meter_provider``'s meter."""

    backend = "opentelemetry"

    def __init__(self, meter_provider: otel.MeterProvider | None = None) -> None:
        provider = meter_provider if meter_provider is not None else otel.get_meter_provider()
        meter = provider.get_meter("discord_logging", __version__)
        self._instruments: dict[str, Any] = {}
        for event, metric in COUNTED.items():
            if metric.kind == "histogram":
                self._instruments[event] = meter.create_histogram(
                    metric.name,
                    unit=metric.unit,
                    description=metric.description,
                    explicit_bucket_boundaries_advisory=list(LATENCY_BUCKETS),
                )
            else:
                self._instruments[event] = meter.create_counter(
                    metric.name, unit=metric.unit, description=metric.description
                )
        for key, metric in GAUGES.items():
            meter.create_observable_gauge(
                metric.name,
                callbacks=[self._observer(key)],
                unit=metric.unit,
                description=metric.description,
            )

    def counted(self, name: str, value: float, alert_type: str | None, reason: str | None) -> None:
        """The stats listener: one count onto its instrument (unknown names are ignored)."""
        instrument = self._instruments.get(name)
        if instrument is None:
            return
        attributes: dict[str, str | int] = {}
        if alert_type is not None:
            attributes["alert_type"] = alert_type
        if name == "request":
            if reason is not None and reason.isdigit():
                attributes["http.response.status_code"] = int(reason)
            else:
                attributes["error.type"] = NO_ANSWER
        elif reason is not None:
            attributes["error.type"] = reason
        if name == "delivery_seconds":
            instrument.record(value, attributes)
        else:
            instrument.add(value, attributes)

    @staticmethod
    def _observer(key: str) -> Any:
        def observe(options: CallbackOptions) -> Iterable[Observation]:
            value = read_gauges().get(key)
            return [Observation(value)] if value is not None else []

        return observe
