"""Prometheus metrics in gunicorn's multiprocess mode: real worker processes write them to
PROMETHEUS_MULTIPROC_DIR, and the MultiProcessCollector (what a /metrics view serves) adds
up their counters and their live gauges."""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path

import httpx
import pytest
from example_runs import Deployment
from freshkit import FreshProcess
from processkit import HEALTHY_CLOSE, script_env
from prometheus_client import CollectorRegistry
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from redis_server import free_port
from waiting import FAILSAFE, wait_for

from discord_logging.delivery.memory import DEFAULT_MAX_RECORDS
from discord_logging.testing import FakeDiscord

WORKER = """
from pathlib import Path
from discord_logging import metrics
metrics.enable_prometheus(gauge_interval=0.05)
handler = make_handler()
log.addHandler(handler)
for i in range(3):
    log.error("worker record %d", i)
assert handler.flush(60)
Path("flushed%s" % os.getpid()).touch()
sys.stdin.readline()  # the test reads the metrics meanwhile
handler.close()
"""


@pytest.mark.slow
def test_workers_counts_add_up_and_dead_workers_gauges_go(tmp_path: Path) -> None:
    """Two workers' counters sum in the collector; their gauges are summed while they live
    (livesum) and gone once gunicorn's child_exit marks them dead."""
    directory = tmp_path / "prometheus"
    directory.mkdir()
    with FakeDiscord() as fake:
        env = script_env(
            fake, fake.add_webhook(host="localhost"), tmp_path / "store", HEALTHY_CLOSE
        )
        env["PROMETHEUS_MULTIPROC_DIR"] = str(directory)
        with contextlib.ExitStack() as stack:
            workers = [
                stack.enter_context(FreshProcess(WORKER, env, tmp_path, f"worker{n}.py"))
                for n in range(2)
            ]
            for worker in workers:
                worker.reach(f"flushed{worker.process.pid}")
            registry = CollectorRegistry()
            MultiProcessCollector(registry, path=str(directory))
            sample = registry.get_sample_value
            accepted = sample("discord_logging_record_accepted_total", {"alert_type": "error"})
            assert accepted == 6
            assert sample("discord_logging_record_delivered_total", {"alert_type": "error"}) == 6
            assert wait_for(
                lambda: sample("discord_logging_queue_capacity") == 2 * DEFAULT_MAX_RECORDS,
                FAILSAFE,
            )
            for worker in workers:
                assert worker.finish() == 0, worker.output()
        for worker in workers:
            mark_process_dead(worker.process.pid, str(directory))  # gunicorn's child_exit hook
        after = CollectorRegistry()
        MultiProcessCollector(after, path=str(directory))
        assert after.get_sample_value("discord_logging_queue_capacity") in (None, 0)
        assert (
            after.get_sample_value("discord_logging_record_accepted_total", {"alert_type": "error"})
            == 6
        )


GUNICORN_APP = """
import logging, os
from prometheus_client import CollectorRegistry, generate_latest, multiprocess
from discord_logging import DiscordHandler, metrics

metrics.enable_prometheus(gauge_interval=0.05)  # in each worker: the app is not preloaded
handler = DiscordHandler(level=logging.ERROR, aggregate_window=0)
logging.getLogger().addHandler(handler)


def app(environ, start_response):
    if environ["PATH_INFO"] == "/metrics":  # prometheus_client's multiprocess recipe
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [generate_latest(registry)]
    logging.getLogger("shop").error("order %s failed", environ["PATH_INFO"])
    start_response("500 Internal Server Error", [("Content-Type", "text/plain")])
    return [str(os.getpid()).encode()]
"""

GUNICORN_CONF = """
from prometheus_client import multiprocess


def child_exit(server, worker):
    multiprocess.mark_process_dead(worker.pid)
"""


def scrape(base_url: str, name: str) -> float:
    """The value of sample ``name`` (with its labels, as written) at /metrics, 0 if absent."""
    for line in httpx.get(f"{base_url}/metrics", timeout=10).text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    return 0.0


@pytest.mark.slow
def test_under_gunicorn_metrics_count_every_worker(
    fast_discord: FakeDiscord, tmp_path: Path
) -> None:
    """gunicorn with two workers and PROMETHEUS_MULTIPROC_DIR: /metrics, served by whichever
    worker, counts the records of the workers that served the requests, and both workers'
    hand-off capacity (each writes its gauges)."""
    directory = tmp_path / "prometheus"
    directory.mkdir()
    (tmp_path / "metrics_app.py").write_text(GUNICORN_APP, encoding="utf-8")
    (tmp_path / "metrics_conf.py").write_text(GUNICORN_CONF, encoding="utf-8")
    deployment = Deployment(fast_discord, tmp_path, "general")
    bind = f"127.0.0.1:{free_port()}"
    base_url = f"http://{bind}"
    deployment.start(
        "gunicorn",
        sys.executable,
        "-m",
        "gunicorn",
        "-c",
        str(tmp_path / "metrics_conf.py"),
        "--workers",
        "2",
        "--bind",
        bind,
        "--chdir",
        str(tmp_path),
        "metrics_app:app",
        PROMETHEUS_MULTIPROC_DIR=str(directory),
        XDG_RUNTIME_DIR=str(tmp_path),
    )
    try:
        assert wait_for(lambda: _answers(f"{base_url}/metrics")), deployment.logs()
        for n in range(4):
            assert httpx.get(f"{base_url}/order{n}", timeout=10).status_code == 500
        accepted = 'discord_logging_record_accepted_total{alert_type="error"}'
        delivered = 'discord_logging_record_delivered_total{alert_type="error"}'
        assert wait_for(lambda: scrape(base_url, delivered) == 4), deployment.logs()
        assert scrape(base_url, accepted) == 4
        both = 2 * DEFAULT_MAX_RECORDS  # each live worker's hand-off, summed (livesum)
        assert wait_for(lambda: scrape(base_url, "discord_logging_queue_capacity") == both)
    finally:
        assert deployment.stop("gunicorn") == 0, deployment.logs()


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=5).status_code == 200
    except httpx.TransportError:
        return False
