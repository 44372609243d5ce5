"""The examples in examples/, run as a user runs them, against FakeDiscord on loopback.

Each example reads its configuration from DISCORD_* variables, as in a deployment; the tests
point those at FakeDiscord and check what arrived, per webhook.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from example_runs import EXAMPLES, ROOT, Deployment, fields, load_example
from redis_server import free_port
from waiting import FAILSAFE

from discord_logging.testing import FakeDiscord

# Real servers and processes (web servers, Celery, the examples).
pytestmark = pytest.mark.slow

ROLE = "123456789012345678"


def test_every_example_says_how_to_run_it() -> None:
    """Each example script starts with a docstring giving its run command and the demo."""
    scripts = sorted(EXAMPLES.glob("*.py"))
    assert len(scripts) >= 11
    for script in scripts:
        text = script.read_text(encoding="utf-8")
        assert text.startswith('"""'), script.name
        if script.name != "gunicorn.conf.py":
            assert "uv run" in text, script.name
            assert "discord-logging demo" in text, script.name


def test_plain_script(fake_discord: FakeDiscord, tmp_path: Path) -> None:
    """basicConfig + DiscordHandler: records routed by level and by alert_type, all delivered
    by atexit alone."""
    deployment = Deployment(fake_discord, tmp_path, "general", "errors", "critical", "security")
    deployment.run("plain_script.py")
    csv = "orders-2024-06-01.csv"
    assert deployment.titles("general") == [f"Import of {csv} started"]
    [unknown] = deployment.embeds("security")
    assert unknown["title"] == f"🔒 {csv} was uploaded by an unknown account"
    assert fields(unknown)["by"] == "ftp-7"
    assert deployment.titles("errors") == [
        f"3 rows rejected in {csv}",
        f"Could not compute the totals of {csv}",
    ]
    rejected, failed = deployment.embeds("errors")
    assert fields(rejected)["rows"] == "17, 42, 108"
    assert "KeyError: 'tax'" in failed["description"]
    assert deployment.titles("critical") == [
        f"🚨 Import of {csv} aborted: the warehouse database is read-only"
    ]


def test_dictconfig_dict(fake_discord: FakeDiscord, tmp_path: Path) -> None:
    """dictConfig with "class": "discord_logging.DiscordHandler" at ERROR: only the error."""
    deployment = Deployment(fake_discord, tmp_path, "general", "errors")
    done = deployment.run("dictconfig_dict.py")
    assert "Synced 1204 items" in done.stderr  # the console handler
    assert deployment.titles("general") == []
    [embed] = deployment.embeds("errors")
    assert embed["title"] == "Supplier ACME rejected the stock update"
    assert fields(embed)["http_status"] == "409"
    assert embed["footer"]["text"] == "inventory-sync Error Alert"


@pytest.mark.parametrize("config", [None, "examples/logging.json"], ids=["yaml", "json"])
def test_dictconfig_file(fake_discord: FakeDiscord, tmp_path: Path, config: str | None) -> None:
    """logging.yaml and logging.json configure the same handler, routes included."""
    deployment = Deployment(fake_discord, tmp_path, "general", "security")
    deployment.run("dictconfig_file.py", *([config] if config else []))
    # No DISCORD_WEBHOOK_ERRORS: errors fall back to the general webhook.
    assert deployment.titles("general") == ["Report upload to S3 failed after 3 attempts"]
    assert deployment.titles("security") == ["🔒 Report Q2 downloaded from an unknown IP"]
    footers = {
        e["footer"]["text"] for kind in ("general", "security") for e in deployment.embeds(kind)
    }
    assert footers == {"report-builder Error Alert", "report-builder Security Alert"}


def test_django_app(fake_discord: FakeDiscord, tmp_path: Path) -> None:
    """The failing view answers 500; its app log and Django's request error both alert; a
    record with extra alert_type goes to the security webhook."""
    deployment = Deployment(fake_discord, tmp_path, "general", "errors", "security")
    done = deployment.run("django_app.py")
    assert "GET /checkout/ -> 500" in done.stdout
    assert deployment.titles("general") == []
    assert deployment.titles("security") == [
        "🔒 Staff coupon used by a customer account on cart c-8812"
    ]
    app_error, server_error = deployment.embeds("errors")
    assert app_error["title"] == "Payment provider timed out for cart c-8812"
    assert fields(app_error)["Logger"] == "shop.checkout"
    assert server_error["title"] == "Internal Server Error: /checkout/"
    assert fields(server_error)["status_code"] == "500"
    assert "RuntimeError: payment provider timed out" in server_error["description"]


def test_fastapi_app(
    fake_discord: FakeDiscord, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Lifespan Notifier sends deploy and (once) health alerts; a 500 becomes an error alert."""
    with warnings.catch_warnings():  # starlette 1.x prefers httpx2, not in the lock file
        warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
        from fastapi.testclient import TestClient

    deployment = Deployment(fake_discord, tmp_path, "general", "errors", "monitoring")
    for key, value in deployment.env.items():
        if key.startswith("DISCORD_"):
            monkeypatch.setenv(key, value)
    example = load_example("fastapi_app")

    async def payments_down() -> dict[str, bool]:
        return {"database": True, "payments": False}

    monkeypatch.setattr(example, "run_checks", payments_down)

    with TestClient(example.app, raise_server_exceptions=False) as client:
        deploy = client.post("/deploys", json={"version": "1.4.2", "by": "alice"})
        assert deploy.json() == {"notified": True, "status": "delivered"}
        for _ in range(2):
            assert client.get("/health").json()["status"] == "degraded"
        assert client.get("/orders/42").status_code == 500
    # Leaving the block ran the lifespan's shutdown (the Notifier's sends are delivered); the
    # handler delivers at the process's exit, here at once.
    assert example.handler.flush(FAILSAFE)

    [deployed] = deployment.embeds("general")
    assert deployed["title"] == "Deploy finished"
    assert deployed["description"] == "shop-api 1.4.2 is live"
    assert {"Version": "1.4.2", "By": "alice"}.items() <= fields(deployed).items()
    [degraded] = deployment.embeds("monitoring")  # once: on the change, not on every poll
    assert degraded["title"] == "Health degraded"
    assert fields(degraded)["Failing"] == "payments"
    [crash] = deployment.embeds("errors")
    assert crash["title"] == "Unhandled error on GET /orders/42"
    assert "LookupError: order 42 has no customer" in crash["description"]


def test_asyncio_notifier(fake_discord: FakeDiscord, tmp_path: Path) -> None:
    """async with Notifier + await send: prints a delivered NotificationResult."""
    deployment = Deployment(fake_discord, tmp_path, "general")
    done = deployment.run("asyncio_notifier.py")
    assert done.stdout.startswith("NotificationResult(")
    assert "status=<DeliveryStatus.DELIVERED" in done.stdout
    assert "http_status=200" in done.stdout
    [embed] = deployment.embeds("general")
    assert embed["title"] == "Backup finished"
    assert {"Database": "orders", "Size": "3.2 GB"}.items() <= fields(embed).items()


def test_custom_templates(fake_discord: FakeDiscord, tmp_path: Path) -> None:
    """error.j2 and critical.j2 from templates_dir: titles, owner/runbook fields, colors."""
    deployment = Deployment(fake_discord, tmp_path, "general")
    deployment.run("custom_templates.py")
    error, critical = deployment.embeds("general")
    assert error["title"] == "🔥 Refund R-2291 failed: card expired"
    assert error["color"] == 0xFF8C00
    assert fields(error)["Owner"] == "@payments-team"
    assert fields(error)["Runbook"] == "https://runbooks.example.com/shop/payments"
    assert fields(error)["Logger"] == "shop.payments"  # super() kept the built-in fields
    assert critical["title"] == "🚨 PAGE: Checkout is down"
    assert critical["color"] == 0xFF0000
    assert fields(critical)["Runbook"] == "https://runbooks.example.com/incidents/ConnectionError"
    assert critical["footer"]["text"] == "discord-logging - page the on-call engineer"
    assert "ConnectionError: payments database unreachable" in critical["description"]


def test_custom_alert_type(fake_discord: FakeDiscord, tmp_path: Path) -> None:
    """ "billing" by route and by extra; only critical pings, and only the configured role."""
    deployment = Deployment(fake_discord, tmp_path, "general", "billing", "critical")
    deployment.run("custom_alert_type.py")
    assert deployment.titles("billing") == [
        "Charge for order A-1001 declined",
        "Refund of 49.90 EUR issued by hand",
    ]
    assert deployment.titles("general") == []
    for payload in deployment.payloads("billing"):
        assert "content" not in payload
        assert payload["allowed_mentions"] == {"parse": []}
    [page] = deployment.payloads("critical")
    assert page["content"] == f"<@&{ROLE}>"
    assert page["allowed_mentions"] == {"parse": [], "roles": [ROLE]}
    [title] = [embed["title"] for embed in page["embeds"]]
    assert title.startswith("🚨 Checkout is down")
    assert "@everyone" not in title  # log text cannot ping


@pytest.fixture
def gunicorn_server(
    fake_discord: FakeDiscord, tmp_path: Path
) -> Iterator[tuple[Deployment, str, subprocess.Popen[bytes]]]:
    """gunicorn (2 workers, preloaded Flask app) on a free port; killed if the test left it
    running."""
    deployment = Deployment(fake_discord, tmp_path, "general", "security")
    bind = f"127.0.0.1:{free_port()}"
    command = [sys.executable, "-m", "gunicorn", "-c", "examples/gunicorn.conf.py"]
    # XDG_RUNTIME_DIR: gunicorn >= 25 puts its control socket there rather than in ~/.gunicorn.
    server = deployment.start(
        "gunicorn",
        *command,
        "examples.flask_app:app",
        "--bind",
        bind,
        PYTHONPATH=str(ROOT),
        XDG_RUNTIME_DIR=str(tmp_path),
    )
    try:
        yield deployment, f"http://{bind}", server
    finally:
        deployment.kill_servers()


def test_flask_under_gunicorn(
    gunicorn_server: tuple[Deployment, str, subprocess.Popen[bytes]],
) -> None:
    """Preloaded handler, forked workers: each worker's records arrive (folded) by shutdown;
    Flask's unhandled exception alerts with its traceback; alert_type routes."""
    deployment, base_url, server = gunicorn_server
    served: list[str] = []  # "served by worker <pid>", one per request that reached the app
    deadline = time.monotonic() + 30
    while not served:
        assert time.monotonic() < deadline, "gunicorn did not answer"
        assert server.poll() is None, "gunicorn exited"
        try:
            served.append(httpx.get(f"{base_url}/ready", timeout=5).text)
        except httpx.TransportError:
            time.sleep(0.1)

    def get(i: int) -> str:
        return httpx.get(f"{base_url}/items/{i}", timeout=10).text

    with ThreadPoolExecutor(4) as pool:
        items = list(pool.map(get, range(16)))
    assert httpx.post(f"{base_url}/login", data={"user": "bob"}, timeout=10).status_code == 403
    assert httpx.get(f"{base_url}/reports/q2", timeout=10).status_code == 500
    assert deployment.stop("gunicorn") == 0, deployment.logs()

    worker_pids = {int(text.split()[-1]) for text in served + items}
    assert server.pid not in worker_pids
    # Per worker: the first record at once, its message edited with the repeats' count: at
    # shutdown it shows "(x N)", N counting them all. Every request is accounted for.
    counts: dict[int, int] = {}
    general = deployment.embeds("general")
    [crash] = [e for e in general if e["title"] == "Exception on /reports/q2 [GET]"]
    assert "LookupError: report q2 has no data source" in crash["description"]
    for embed in general:
        if embed is crash:
            continue
        assert embed["title"].startswith("Stock service unreachable while serving /items/")
        pid = int(re.fullmatch(r"\S+ \((\d+)\) / \S+", fields(embed)["Process/Thread"])[1])
        match = re.search(r"\(x (\d+)\)", embed["title"])
        counts[pid] = max(counts.get(pid, 0), int(match[1]) if match else 1)
    assert set(counts) <= worker_pids
    assert sum(counts.values()) == len(items)
    [locked] = deployment.embeds("security")
    assert locked["title"] == "🔒 Login refused for bob: account locked"
    assert fields(locked)["ip"] == "127.0.0.1"
