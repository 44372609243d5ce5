"""The recipes of docs/integrations.md, run as a user runs them with the real packages:
loguru, structlog (both set-ups), OpenTelemetry, Celery on a real Redis broker, FastAPI under
uvicorn with two workers. Routing by ``alert_type`` is checked in each."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from example_runs import SERVER_WAIT, Deployment, fields
from processkit import kept_letters
from redis_server import RedisServer, free_port

from discord_logging.testing import FakeDiscord

# Real servers and processes (web servers, Celery, the examples).
pytestmark = pytest.mark.slow

TRACE_URLS = "https://tracing.example/trace/{trace_id}?span={span_id}"


@pytest.fixture
def deployment(fake_discord: FakeDiscord, tmp_path: Path) -> Iterator[Deployment]:
    """Webhooks for general and security alerts; servers a test started are killed after."""
    deployment = Deployment(fake_discord, tmp_path, "general", "security")
    try:
        yield deployment
    finally:
        deployment.kill_servers()


def test_loguru(deployment: Deployment) -> None:
    """logger.add(handler): bind(alert_type=...) routes, bound values are fields, the title
    is the message without loguru's format, the traceback shows once."""
    done = deployment.run("loguru_app.py")
    assert "Worker started" in done.stderr  # loguru's own console sink
    [login] = deployment.embeds("security")
    assert login["title"] == "🔒 3 failed logins for bob"
    assert {"user": "bob", "ip": "203.0.113.7"}.items() <= fields(login).items()
    assert "extra" not in fields(login)
    assert "description" not in login  # the message is the title: nothing more to say
    [failed] = deployment.embeds("general")
    assert failed["title"] == "Charge failed"
    assert fields(failed)["order"] == "A-1001"  # logger.contextualize()
    assert fields(failed)["Location"].startswith("examples/loguru_app.py:")
    description = failed["description"]
    assert description.startswith("```py\nTraceback (most recent call last):")
    assert description.count("Traceback (most recent call last):") == 1
    assert description.count("ValueError: card declined for order A-1001 (49 EUR)") == 1


@pytest.mark.parametrize("setup", ["formatter", "kwargs"])
def test_structlog(deployment: Deployment, setup: str) -> None:
    """Both stdlib set-ups: the event is the title, its keys are fields, an alert_type key
    routes, the traceback shows once; with ProcessorFormatter its rendering is the message."""
    deployment.run("structlog_app.py", setup)
    [login] = deployment.embeds("security")
    assert login["title"] == "🔒 3 failed logins"
    assert {"user": "bob", "ip": "203.0.113.7"}.items() <= fields(login).items()
    assert "alert_type" not in fields(login)
    failed, legacy = deployment.embeds("general")
    assert failed["title"] == "payment declined"
    assert {"order": "A-1001", "request_id": "r-5521"}.items() <= fields(failed).items()
    assert failed["description"].count("KeyError: 'tax'") == 1
    assert legacy["title"] == "Stock sync failed for ACME"  # a plain logging record
    if setup == "formatter":
        # ConsoleRenderer's line (its colours removed), then the traceback section.
        line, traceback = failed["description"].split("\n", 1)
        assert "[error    ] payment declined" in line
        assert "order=A-1001" in line
        assert "\x1b" not in failed["description"]
        assert traceback.startswith("```py\nTraceback (most recent call last):")
        assert "[warning  ] 3 failed logins" in login["description"]
        assert "[shop.legacy]" in legacy["description"]
        assert not {"event", "level", "logger", "timestamp"} & fields(failed).keys()
    else:
        assert failed["description"].startswith("```py\nTraceback (most recent call last):")
        assert "description" not in login


def test_opentelemetry(deployment: Deployment) -> None:
    """The active span's ids are the Trace and Span fields, the trace a link from the
    template; a record outside any span has neither; alert_type routes."""
    deployment.env["DISCORD_TRACE_URL_TEMPLATE"] = TRACE_URLS
    deployment.run("opentelemetry_app.py")
    timed_out, nightly = deployment.embeds("general")
    [security] = deployment.embeds("security")
    assert timed_out["title"] == "Payment provider timed out for order A-1001"
    link, span_id = fields(timed_out)["Trace"], fields(timed_out)["Span"]
    trace_id = link[1:33]
    assert len(trace_id) == 32
    assert len(span_id) == 16
    assert link == f"[{trace_id}](https://tracing.example/trace/{trace_id}?span={span_id})"
    # The security record was logged in the parent span: same trace, another span.
    assert security["title"] == "🔒 Card of order A-1001 used from a new country"
    assert fields(security)["Trace"].startswith(f"[{trace_id}](")
    assert fields(security)["Span"] != span_id
    assert "Trace" not in fields(nightly)
    assert "Span" not in fields(nightly)


def test_celery_worker(deployment: Deployment, redis_server: RedisServer) -> None:
    """A prefork worker on a real Redis broker, set up as docs/integrations.md says (the
    setup_logging signal, nothing at the pool's exit): a task's own record (routed by
    alert_type) and Celery's log of a failed task arrive while it runs, a storm's first record
    at once; the warm shutdown (SIGTERM) ends the pool processes with os._exit, and the
    storm's count, held for the aggregation window, still arrives before it."""
    broker = start_celery(deployment, redis_server)
    queued = deployment.run("celery_app.py", **broker)
    assert "queued 3 tasks" in queued.stdout
    [login] = deployment.wait_for("security", 1)
    assert login["title"] == "🔒 3 failed logins for bob"
    assert fields(login)["ip"] == "203.0.113.7"
    assert fields(login)["Process/Thread"].startswith("ForkPoolWorker-")
    general = deployment.wait_for("general", 2)
    [failed] = [e for e in general if e["title"].startswith("Task shop.charge[")]
    assert "raised unexpected: ValueError" in failed["title"]
    assert "ValueError: card declined for order A-1001 (49 EUR)" in failed["description"]
    assert fields(failed)["Logger"] == "celery.app.trace"
    stock = [t for t in deployment.titles("general") if t.startswith("Stock sync failed")]
    assert stock, deployment.titles("general")  # the storm's first record, sent at once
    assert deployment.stop("worker") == 0, deployment.logs()  # SIGTERM: warm shutdown
    assert "not delivered" not in deployment.log("worker")
    assert len(deployment.titles("general")) == 2  # nothing else (the task's INFO record)
    # The storm's message, edited at the pool process's exit with the count of its repeats.
    storm = [t for t in deployment.titles("general") if t.startswith("Stock sync failed")]
    assert storm == ["Stock sync failed for ACME (x 5)"], deployment.logs()


def start_celery(deployment: Deployment, redis_server: RedisServer) -> dict[str, str]:
    """``celery -A examples.celery_app worker``, prefork with two pool processes, on the Redis
    broker; the broker's environment, for queuing tasks."""
    broker = {"CELERY_BROKER_URL": redis_server.url}
    deployment.start(
        "worker",
        sys.executable,
        "-m",
        "celery",
        "-A",
        "examples.celery_app",
        "worker",
        "--pool",
        "prefork",
        "--concurrency",
        "2",
        "--loglevel",
        "INFO",
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
        **broker,
    )
    return broker


NEXT_START = """
import sys, time
from discord_logging import DiscordHandler
handler = DiscordHandler()
deadline = time.monotonic() + 60
while handler.stats()["redelivered"] < int(sys.argv[1]) and time.monotonic() < deadline:
    time.sleep(0.05)
"""


def test_celery_worker_during_an_outage(deployment: Deployment, redis_server: RedisServer) -> None:
    """The same worker while Discord answers 503: at the warm shutdown each pool process's
    drain keeps what it could not deliver in the store (nothing said lost), and the next
    start, logging nothing, delivers each once: the task's record, Celery's log of the failed
    task, the storm's first record and its count."""
    deployment.fake.fail_next(100_000, 503)
    deployment.env["DISCORD_CLOSE_TIMEOUT"] = "1.5"
    broker = start_celery(deployment, redis_server)
    deployment.run("celery_app.py", **broker)
    deadline = time.monotonic() + SERVER_WAIT
    while deployment.fake.count_status(503) < 3:  # each webhook's records were tried
        assert time.monotonic() < deadline, deployment.logs()
        time.sleep(0.05)
    assert deployment.stop("worker") == 0, deployment.logs()
    assert "LOST" not in deployment.log("worker"), deployment.logs()
    kept = kept_letters(deployment.tmp_path / "store")
    assert len(kept) >= 4, [x.notification.title for x in kept]
    deployment.fake.reset()
    again = subprocess.run(
        [sys.executable, "-c", NEXT_START, str(len(kept))],
        env=deployment.env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert again.returncode == 0, again.stderr
    assert deployment.titles("security") == ["🔒 3 failed logins for bob"]
    general = deployment.titles("general")
    assert any(t.startswith("Task shop.charge[") for t in general), general
    assert "Stock sync failed for ACME" in general, general
    assert "Stock sync failed for ACME (x 5)" in general, general
    assert len(general) == 3, general  # each once, nothing else
    assert kept_letters(deployment.tmp_path / "store") == []


def start_uvicorn(deployment: Deployment, workers: int) -> str:
    """``uvicorn examples.fastapi_app:app`` on a free loopback port, with ``workers`` worker
    processes (1: the server runs in the process started); its base URL once each is up."""
    port = free_port()
    options = ["--workers", str(workers)] if workers > 1 else []
    server = deployment.start(
        "uvicorn",
        sys.executable,
        "-m",
        "uvicorn",
        "examples.fastapi_app:app",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        *options,
    )
    deadline = time.monotonic() + SERVER_WAIT
    while deployment.log("uvicorn").count("Application startup complete.") < workers:
        assert server.poll() is None, deployment.logs()
        assert time.monotonic() < deadline, deployment.logs()
        time.sleep(0.05)
    return f"http://127.0.0.1:{port}"


def test_fastapi_under_uvicorn(deployment: Deployment) -> None:
    """uvicorn --workers 2, the handler added at the app's import in each worker: errors and
    routed records arrive; SIGTERM to the supervisor ends each worker with uvicorn's re-raised
    SIGTERM, and each worker's storm count (the folded repeats, held for the window) still
    arrives: the library drains after uvicorn's graceful shutdown, before the signal."""
    base_url = start_uvicorn(deployment, workers=2)
    for order in range(6):
        assert httpx.get(f"{base_url}/orders/{order}", timeout=10).status_code == 500
    locked = httpx.post(f"{base_url}/login", json={"user": "bob"}, timeout=10)
    assert locked.status_code == 403
    deployment.stop("uvicorn")  # SIGTERM, as a process manager stops it
    assert "not delivered" not in deployment.log("uvicorn")

    # Per worker: the first error at once, its message edited with the repeats' count (or,
    # with DISCORD_INCIDENT_UPDATES=message, a "(x N since ...)" summary) by the lifespan's
    # handler.close(). Every request is accounted for.
    counts: dict[str, int] = {}
    title = re.compile(r"Unhandled error on GET /orders/\d( \(x \d+( since .+)?\))?")
    for crash in deployment.embeds("general"):
        assert title.fullmatch(crash["title"]), crash["title"]
        match = re.search(r"\(x (\d+)", crash["title"])
        process = fields(crash)["Process/Thread"]
        counts[process] = max(counts.get(process, 0), int(match[1]) if match else 1)
    assert sum(counts.values()) == 6
    first = deployment.embeds("general")[0]
    assert "LookupError: order " in first["description"]
    [login] = deployment.embeds("security")
    assert login["title"] == "🔒 Login refused for bob: account locked"
    assert fields(login)["ip"] == "127.0.0.1"
