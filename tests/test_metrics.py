"""The handler's own metrics, read through the real OpenTelemetry SDK's in-memory reader and
the real prometheus_client, from a handler delivering to FakeDiscord over HTTP."""

from __future__ import annotations

import importlib.metadata
import logging
import re
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import WEBHOOK, attach
from entry_point import run
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from prometheus_client import CollectorRegistry

from discord_logging import DiscordHandler, metrics, stats
from discord_logging.errors import ConfigurationError
from discord_logging.metrics._gauges import read_gauges
from discord_logging.testing import FakeDiscord


@pytest.fixture(autouse=True)
def _no_backend_left() -> Iterator[None]:
    """Every backend enabled by a test is disabled after it (listeners are process-wide)."""
    yield
    metrics.disable()


def handler_for(fake: FakeDiscord, **options: Any) -> DiscordHandler:
    webhooks = {"general": fake.add_webhook(), "error": fake.add_webhook()}
    return DiscordHandler(webhooks=webhooks, allowed_hosts=fake.host, **options)


def otel_points(reader: InMemoryMetricReader) -> dict[str, list[Any]]:
    """Metric name -> its data points, from one collection."""
    data = reader.get_metrics_data()
    points: dict[str, list[Any]] = {}
    assert data is not None
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                points.setdefault(metric.name, []).extend(metric.data.data_points)
    return points


def total(points: list[Any], **attributes: Any) -> float:
    return sum(
        p.value for p in points if all(p.attributes.get(k) == v for k, v in attributes.items())
    )


def send_two_errors_one_429(fake: FakeDiscord, handler: DiscordHandler) -> None:
    log = attach(handler)
    fake.force_429(1, retry_after=0.05)
    log.error("payment failed for order 1")
    assert handler.flush(30)
    log.error("disk almost full")
    assert handler.flush(30)


def test_opentelemetry_reports_what_stats_counts(fast_discord: FakeDiscord) -> None:
    """Accepted, delivered, requests by status, 429s, latency and the gauges reach the SDK's
    reader with the handler's own numbers; a record logged after close is dropped as
    error.type=closed."""
    reader = InMemoryMetricReader()
    metrics.enable_opentelemetry(MeterProvider(metric_readers=[reader]))
    handler = handler_for(fast_discord)
    send_two_errors_one_429(fast_discord, handler)
    points = otel_points(reader)
    counted = handler.stats()
    assert total(points["discord_logging.record.accepted"], alert_type="error") == 2
    assert total(points["discord_logging.record.delivered"]) == counted["delivered"] == 2
    sent = points["discord_logging.request.sent"]
    assert total(sent, **{"http.response.status_code": 429}) == 1
    assert total(sent, **{"http.response.status_code": 200}) == counted["messages_sent"]
    assert total(points["discord_logging.request.rate_limited"]) == counted["rate_limited"] == 1
    latency = points["discord_logging.record.delivery.duration"]
    assert sum(p.count for p in latency) == 2
    assert total(points["discord_logging.queue.capacity"]) > 0
    assert total(points["discord_logging.queue.size"]) == 0
    assert total(points["discord_logging.dead_letter.kept"]) == 0
    handler.close()
    logging.getLogger("app").error("after close")
    dropped = otel_points(reader)["discord_logging.record.dropped"]
    assert total(dropped, **{"error.type": "closed"}) == 1
    assert "discord_logging.queue.size" not in otel_points(reader)  # closed: no gauges


def test_opentelemetry_dead_letters_by_reason(fast_discord: FakeDiscord) -> None:
    """A webhook Discord says is gone: its record is dead-lettered with error.type
    webhook_disabled, and the dead-letters gauge shows it kept."""
    reader = InMemoryMetricReader()
    metrics.enable_opentelemetry(MeterProvider(metric_readers=[reader]))
    handler = handler_for(fast_discord)
    webhook_id = handler.settings.webhook_urls["error"].webhook_id
    fast_discord.set_status_override(webhook_id, 404)
    attach(handler).error("lost")
    assert handler.flush(30)
    points = otel_points(reader)
    dead = points["discord_logging.record.dead_lettered"]
    assert total(dead, **{"error.type": "webhook_disabled", "alert_type": "error"}) == 1
    assert total(points["discord_logging.dead_letter.kept"]) == 1
    handler.close()


def test_prometheus_reports_what_stats_counts(fast_discord: FakeDiscord) -> None:
    """The same counts as prometheus_client samples (OpenTelemetry's exporter's names), the
    gauges read at scrape time."""
    registry = CollectorRegistry()
    metrics.enable_prometheus(registry)
    handler = handler_for(fast_discord)
    send_two_errors_one_429(fast_discord, handler)
    sample = registry.get_sample_value
    assert sample("discord_logging_record_accepted_total", {"alert_type": "error"}) == 2
    assert sample("discord_logging_record_delivered_total", {"alert_type": "error"}) == 2
    status = {"http_response_status_code": "429", "error_type": ""}
    assert sample("discord_logging_request_sent_total", status) == 1
    assert sample("discord_logging_request_rate_limited_total") == 1
    latency = sample(
        "discord_logging_record_delivery_duration_seconds_count", {"alert_type": "error"}
    )
    assert latency == 2
    assert (sample("discord_logging_queue_capacity") or 0) > 0
    assert sample("discord_logging_queue_size") == 0
    handler.close()
    logging.getLogger("app").error("after close")
    dropped = {"alert_type": "error", "error_type": "closed"}
    assert sample("discord_logging_record_dropped_total", dropped) == 1


def test_enabling_twice_returns_the_first() -> None:
    """A second enable of one backend on one registry neither registers the metrics again
    (prometheus_client would refuse the duplicate) nor counts twice."""
    registry = CollectorRegistry()
    first = metrics.enable_prometheus(registry)
    assert metrics.enable_prometheus(registry) is first
    stats.DeliveryStats().add("emitted", alert_type="general")
    assert (
        registry.get_sample_value(
            "discord_logging_record_accepted_total", {"alert_type": "general"}
        )
        == 1
    )
    assert metrics.enabled() == ["prometheus"]


def test_a_failing_listener_is_removed_and_said_once(capsys: pytest.CaptureFixture[str]) -> None:
    """A listener that raises never reaches the code that counted: it is removed, said once."""
    calls = []

    def broken(name: str, value: float, alert_type: str | None, reason: str | None) -> None:
        calls.append(name)
        raise ValueError("broken backend")

    stats.add_listener(broken)
    counts = stats.DeliveryStats()
    counts.add("emitted")
    counts.dropped("handoff_full")
    assert counts.get("emitted") == 1
    assert calls == ["emitted"]
    assert capsys.readouterr().err.count("metrics listener failed") == 1


@pytest.mark.slow
def test_check_says_the_metrics_wiring(monkeypatch: pytest.MonkeyPatch) -> None:
    """``discord-logging check`` has one line saying the metrics packages installed and how
    the application turns them on, and the multiprocess directory when set."""
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", "/tmp/prom")
    result = run("check", env={"DISCORD_WEBHOOK_GENERAL": WEBHOOK})
    assert result.returncode == 0, result.stderr
    [line] = [x for x in result.stdout.splitlines() if x.startswith("Metrics: ")]
    assert "opentelemetry-api" in line
    assert "discord_logging.metrics.enable_prometheus()" in line
    assert "PROMETHEUS_MULTIPROC_DIR=/tmp/prom" in line


def test_without_the_packages_check_says_which_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    """No metrics package installed: the line names the extras to install."""

    def missing(name: str) -> str:
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "version", missing)
    assert "discord-alert-logging[opentelemetry]" in metrics.wiring()


@pytest.mark.slow
def test_nothing_is_imported_for_metrics_not_asked_for(fast_discord: FakeDiscord) -> None:
    """A handler that delivers imports neither OpenTelemetry's metrics API nor
    prometheus_client (a fresh interpreter: this one has both loaded)."""
    script = (
        "import logging, sys\n"
        "from discord_logging import DiscordHandler\n"
        f"h = DiscordHandler(webhooks={{'general': {fast_discord.add_webhook()!r}}}, "
        f"allowed_hosts={fast_discord.host!r})\n"
        "logging.getLogger('app').addHandler(h)\n"
        "logging.getLogger('app').error('boom')\n"
        "assert h.flush(60)\n"
        "h.close()\n"
        "print(sorted(m for m in sys.modules if m.startswith(('opentelemetry.metrics', "
        "'opentelemetry.sdk', 'prometheus_client'))))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
    assert len(fast_discord.messages) == 1


def test_a_count_made_while_telling_is_not_told_again() -> None:
    """A backend whose SDK logs while counting reaches the handler, which may count a drop:
    that count is kept but not told on that thread, so telling cannot loop."""
    counts = stats.DeliveryStats()
    told: list[str] = []

    def logging_backend(name: str, value: float, alert_type: str | None, r: str | None) -> None:
        told.append(name)
        counts.dropped("handoff_full")  # what its log record would cost, counted meanwhile

    stats.add_listener(logging_backend)
    try:
        counts.add("emitted")
    finally:
        stats.remove_listener(logging_backend)
    assert told == ["emitted"]
    assert counts.snapshot()["dropped"] == {"handoff_full": 1}


def test_an_open_circuit_is_a_gauge(fast_discord: FakeDiscord) -> None:
    """Discord failing past the breaker's threshold: the webhook's open circuit shows in the
    gauge, and the record it stopped is dead-lettered as circuit_open."""
    reader = InMemoryMetricReader()
    metrics.enable_opentelemetry(MeterProvider(metric_readers=[reader]))
    fast_discord.fail_next(1000, 503)
    handler = handler_for(
        fast_discord, engine_options={"circuit_threshold": 1, "circuit_reset": 600.0}
    )
    attach(handler).error("down")
    assert handler.flush(30)
    points = otel_points(reader)
    assert total(points["discord_logging.circuit.open"]) == 1
    dead = points["discord_logging.record.dead_lettered"]
    assert total(dead, **{"error.type": "circuit_open"}) == 1
    assert total(points["discord_logging.request.sent"], **{"http.response.status_code": 503}) == 1
    handler.close()


@pytest.mark.parametrize(
    ("enable", "module", "extra"),
    [
        (metrics.enable_opentelemetry, "opentelemetry", "[opentelemetry]"),
        (metrics.enable_prometheus, "prometheus_client", "[prometheus]"),
    ],
)
def test_a_backend_not_installed_names_its_extra(
    monkeypatch: pytest.MonkeyPatch, enable: Any, module: str, extra: str
) -> None:
    """Enabling a backend whose package is missing raises ConfigurationError naming the
    extra to install, and enables nothing."""
    for name in [m for m in sys.modules if m == module or m.startswith(module + ".")]:
        monkeypatch.delitem(sys.modules, name)
    for name in ("discord_logging.metrics._otel", "discord_logging.metrics._prometheus"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    monkeypatch.setitem(sys.modules, module, None)  # import fails, as when not installed
    with pytest.raises(ConfigurationError, match=re.escape(f"discord-alert-logging{extra}")):
        enable()
    assert metrics.enabled() == []


def test_wiring_names_the_packages_and_the_calls() -> None:
    """With both installed (the dev group), the line names each and how to turn it on."""
    line = metrics.wiring()
    assert "prometheus-client" in line
    assert "discord_logging.metrics.enable_opentelemetry()" in line


def test_a_handler_that_cannot_be_read_is_skipped_and_said_once(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A gauge source failing (its store closing under the read) is skipped, said once per
    process however often the reader collects; the others still count."""

    class Source:
        def __init__(self, fails: bool) -> None:
            self.fails = fails

        def _metric_gauges(self) -> dict[str, int]:
            if self.fails:
                raise RuntimeError("store closed")
            return {"queue_capacity": 7}

    sources = [Source(fails=True), Source(fails=False)]
    for source in sources:
        stats.GAUGE_SOURCES.add(source)
    try:
        assert read_gauges()["queue_capacity"] == 7
        assert read_gauges()["queue_capacity"] == 7
    finally:
        for source in sources:
            stats.GAUGE_SOURCES.discard(source)
    assert capsys.readouterr().err.count("could not read a handler's gauges") == 1
