"""The Prometheus backend: ``prometheus_client`` metrics, fed by the stats listener.

In gunicorn's multiprocess mode (``PROMETHEUS_MULTIPROC_DIR`` set before ``prometheus_client``
is imported) counters and the histogram are written to the directory's files by every worker
and summed by the ``MultiProcessCollector`` that serves ``/metrics``; gauges cannot be read at
scrape time there (the scraping process is another worker), so a daemon thread of each process
writes them every ``gauge_interval`` seconds, restarted lazily after a fork.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable
from typing import Any, Final

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram, values

from ._gauges import read_gauges
from ._names import COUNTED, GAUGES, LATENCY_BUCKETS, NO_ANSWER

# How each gauge adds up over a fleet's live processes: queues and capacity per process
# (summed); the store's dead letters and the circuits are seen alike by every process (max).
_MODES: Final = {
    "queue_depth": "livesum",
    "queue_capacity": "livesum",
    "dead_letters_kept": "livemax",
    "open_circuits": "livemax",
}


def _label(name: str) -> str:
    return name.replace(".", "_")


def multiprocess() -> bool:
    """Whether prometheus_client writes its values to ``PROMETHEUS_MULTIPROC_DIR`` (which it
    decided when it was imported)."""
    return values.ValueClass is not values.MutexValue


class PrometheusMetrics:
    """The handler's metrics in ``registry`` (prometheus_client's default one unless given)."""

    backend = "prometheus"

    def __init__(
        self, registry: CollectorRegistry | None = None, gauge_interval: float = 5.0
    ) -> None:
        registry = registry if registry is not None else REGISTRY
        self.multiprocess = multiprocess()
        self._metrics: dict[str, Any] = {}
        for event, metric in COUNTED.items():
            labels = [_label(label) for label in metric.labels]
            name = metric.prometheus_name
            if metric.kind == "histogram":
                self._metrics[event] = Histogram(
                    name, metric.description, labels, registry=registry, buckets=LATENCY_BUCKETS
                )
            else:
                self._metrics[event] = Counter(name, metric.description, labels, registry=registry)
        self._gauges: dict[str, Gauge] = {}
        for key, metric in GAUGES.items():
            gauge = Gauge(
                metric.prometheus_name,
                metric.description,
                registry=registry,
                multiprocess_mode=_MODES[key],  # type: ignore[arg-type]
            )
            if not self.multiprocess:  # read at scrape time, exact
                gauge.set_function(self._reader(key))
            self._gauges[key] = gauge
        self._interval = gauge_interval
        self._stop = threading.Event()
        self._writer_pid: int | None = None
        if self.multiprocess:
            self._start_writer()

    def counted(self, name: str, value: float, alert_type: str | None, reason: str | None) -> None:
        """The stats listener: one count onto its metric (unknown names are ignored)."""
        metric = self._metrics.get(name)
        if metric is None:
            return
        if self.multiprocess and self._writer_pid != os.getpid():
            self._start_writer()  # a forked worker (gunicorn): its own gauge writer
        values: dict[str, str] = {}
        labels = COUNTED[name].labels
        if "alert_type" in labels:
            values["alert_type"] = alert_type or ""
        if name == "request":
            status = reason if reason is not None and reason.isdigit() else ""
            values["http_response_status_code"] = status
            values["error_type"] = "" if status else NO_ANSWER
        elif "error.type" in labels:
            values["error_type"] = reason or ""
        target = metric.labels(**values) if values else metric
        if name == "delivery_seconds":
            target.observe(value)
        else:
            target.inc(value)

    @staticmethod
    def _reader(key: str) -> Callable[[], float]:
        return lambda: float(read_gauges().get(key, 0))

    def write_gauges(self) -> None:
        """Set the gauges from this process's handlers now (the writer thread does, in
        multiprocess mode)."""
        values = read_gauges()
        for key, gauge in self._gauges.items():
            gauge.set(values.get(key, 0))

    def stop(self) -> None:
        """End the gauge writer (multiprocess mode)."""
        self._stop.set()

    def _start_writer(self) -> None:
        # No lock: one held by another thread at a fork would never be released in the
        # child; two threads racing here start two writers, which write the same values.
        if self._writer_pid == os.getpid() or self._stop.is_set():
            return
        self._writer_pid = os.getpid()
        thread = threading.Thread(
            target=self._write_until_stopped, name="discord-logging-metrics", daemon=True
        )
        with contextlib.suppress(RuntimeError):  # at interpreter shutdown: no more gauges
            thread.start()

    def _write_until_stopped(self) -> None:
        pid = os.getpid()
        while self._writer_pid == pid:
            self.write_gauges()
            if self._stop.wait(self._interval):
                return
