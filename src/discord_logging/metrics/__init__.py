"""The handler's own metrics, where the application's monitoring lives (docs/metrics.md).

Records accepted, delivered, aggregated, dead-lettered and dropped (by ``error.type``),
requests by status, 429s, retries, delivery latency, and gauges for the queue, the dead
letters kept and open circuits: read off :mod:`discord_logging.stats` by a listener, so they
agree with ``handler.stats()``. Counted on the thread that counts (in memory); gauges read
when collected. Nothing here is imported until the application enables a backend::

    from discord_logging.metrics import enable_opentelemetry, enable_prometheus

    enable_opentelemetry()      # pip install discord-alert-logging[opentelemetry]
    enable_prometheus()         # pip install discord-alert-logging[prometheus]

Each counts every handler of the process from then on; enabling the same backend twice
returns the first. :func:`disable` stops them.
"""

from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING, Any

from .. import stats
from ..errors import ConfigurationError

if TYPE_CHECKING:
    from opentelemetry.metrics import MeterProvider
    from prometheus_client import CollectorRegistry

    from ._otel import OpenTelemetryMetrics
    from ._prometheus import PrometheusMetrics

__all__ = ["disable", "enable_opentelemetry", "enable_prometheus", "enabled", "wiring"]

_LOCK = threading.Lock()
_ENABLED: dict[tuple[str, int], Any] = {}


def enable_opentelemetry(meter_provider: MeterProvider | None = None) -> OpenTelemetryMetrics:
    """Report through OpenTelemetry's metrics API, on ``meter_provider`` (the global one,
    which is a no-op until the application installs an SDK, unless given).

    Raises :class:`~discord_logging.errors.ConfigurationError` when ``opentelemetry-api`` is
    not installed."""
    try:
        from ._otel import OpenTelemetryMetrics
    except ImportError:
        raise ConfigurationError(
            "discord_logging.metrics.enable_opentelemetry: opentelemetry-api is not "
            "installed; install it with: pip install 'discord-alert-logging[opentelemetry]'"
        ) from None
    return _enable("opentelemetry", meter_provider, lambda: OpenTelemetryMetrics(meter_provider))  # type: ignore[no-any-return]


def enable_prometheus(
    registry: CollectorRegistry | None = None, gauge_interval: float = 5.0
) -> PrometheusMetrics:
    """Report through ``prometheus_client``, in ``registry`` (its default one unless given).
    Under gunicorn's multiprocess mode (``PROMETHEUS_MULTIPROC_DIR``) every worker's counts
    add up in the ``MultiProcessCollector``; each writes its gauges every ``gauge_interval``
    seconds.

    Raises :class:`~discord_logging.errors.ConfigurationError` when ``prometheus_client`` is
    not installed."""
    try:
        from ._prometheus import PrometheusMetrics
    except ImportError:
        raise ConfigurationError(
            "discord_logging.metrics.enable_prometheus: prometheus_client is not installed; "
            "install it with: pip install 'discord-alert-logging[prometheus]'"
        ) from None
    return _enable(  # type: ignore[no-any-return]
        "prometheus", registry, lambda: PrometheusMetrics(registry, gauge_interval)
    )


def _enable(backend: str, target: object, build: Any) -> Any:
    key = (backend, id(target))
    with _LOCK:
        backend_metrics = _ENABLED.get(key)
        if backend_metrics is None:
            backend_metrics = _ENABLED[key] = build()
            stats.add_listener(backend_metrics.counted)
        return backend_metrics


def enabled() -> list[str]:
    """The backends enabled in this process (``"opentelemetry"``, ``"prometheus"``)."""
    with _LOCK:
        return sorted({backend for backend, _ in _ENABLED})


def disable() -> None:
    """Stop every backend: no more counts reach them (their instruments stay registered)."""
    with _LOCK:
        for backend_metrics in _ENABLED.values():
            stats.remove_listener(backend_metrics.counted)
            stop = getattr(backend_metrics, "stop", None)
            if stop is not None:
                stop()
        _ENABLED.clear()


def wiring() -> str:
    """One line for ``discord-logging check``: which metrics packages are installed (read
    from their metadata, nothing imported) and how the application turns them on."""
    from importlib.metadata import PackageNotFoundError, version

    found = []
    for package, extra in (
        ("opentelemetry-api", "enable_opentelemetry()"),
        ("opentelemetry-sdk", None),
        ("prometheus-client", "enable_prometheus()"),
    ):
        try:
            found.append((f"{package} {version(package)}", extra))
        except PackageNotFoundError:
            continue
    if not found:
        return (
            "no metrics package installed (pip install 'discord-alert-logging[opentelemetry]' "
            "or '[prometheus]'; docs/metrics.md)"
        )
    calls = " or ".join(f"discord_logging.metrics.{call}" for _, call in found if call)
    text = ", ".join(name for name, _ in found) + " installed"
    if calls:
        text += f"; the application turns them on with {calls}"
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory:
        text += f"; Prometheus multiprocess mode: PROMETHEUS_MULTIPROC_DIR={directory}"
    return text + " (docs/metrics.md)"
