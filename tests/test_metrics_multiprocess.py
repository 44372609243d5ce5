"""Prometheus metrics in gunicorn's multiprocess mode: real worker processes write them to
PROMETHEUS_MULTIPROC_DIR, and the MultiProcessCollector (what a /metrics view serves) adds
up their counters and their live gauges."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
from freshkit import FreshProcess
from processkit import HEALTHY_CLOSE, script_env
from prometheus_client import CollectorRegistry
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from waiting import FAILSAFE, wait_for

from discord_logging.delivery.worker import HANDOFF_CAPACITY
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
                lambda: sample("discord_logging_queue_capacity") == 2 * HANDOFF_CAPACITY,
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
