"""The examples in examples/, run as a user runs them, against FakeDiscord on loopback.

Each example reads its configuration from DISCORD_* variables, as in a deployment; the tests
point those at FakeDiscord and check what arrived, per webhook.
"""

from __future__ import annotations

import importlib.util
import os
import re
import signal
import socket
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from discord_logging.testing import FakeDiscord

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
TIMEOUT = 60
ROLE = "123456789012345678"


class Deployment:
    """The environment of one example run: a FakeDiscord webhook per alert type."""

    def __init__(self, fake: FakeDiscord, tmp_path: Path, *types: str) -> None:
        self.fake = fake
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("DISCORD_")}
        self.env["DISCORD_ALLOWED_HOSTS"] = fake.host
        self.env["DISCORD_STORE_PATH"] = str(tmp_path / "store")
        self._types: dict[str, str] = {}  # webhook id -> alert type
        for kind in types:
            url = fake.add_webhook()
            self.env[f"DISCORD_WEBHOOK_{kind.upper()}"] = url
            self._types[urlsplit(url).path.split("/")[-2]] = kind

    def run(self, script: str, *args: str) -> subprocess.CompletedProcess[str]:
        """Run ``python examples/<script>`` from the repository root; it must succeed."""
        done = subprocess.run(
            [sys.executable, f"examples/{script}", *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        assert "not delivered" not in done.stderr, done.stderr  # the close deadline was kept
        return done

    def embeds(self, kind: str) -> list[dict[str, Any]]:
        """The embeds the webhook of ``kind`` (as in DISCORD_WEBHOOK_<KIND>) posted, in order,
        as readers see them at the end (after an incident's edits)."""
        found = []
        for message in self.fake.messages:
            if self._types[message.webhook_id] != kind:
                continue
            now = self.fake.message(message.message_id)
            found.extend(now.embeds if now is not None else message.embeds)
        return found

    def titles(self, kind: str) -> list[str]:
        return [embed["title"] for embed in self.embeds(kind)]

    def payloads(self, kind: str) -> list[dict[str, Any]]:
        return [m.payload for m in self.fake.messages if self._types[m.webhook_id] == kind]


def fields(embed: dict[str, Any]) -> dict[str, str]:
    return {field["name"]: field["value"] for field in embed.get("fields", [])}


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
    """basicConfig + DiscordHandler: records routed by level, all delivered by atexit alone."""
    deployment = Deployment(fake_discord, tmp_path, "general", "errors", "critical")
    deployment.run("plain_script.py")
    csv = "orders-2024-06-01.csv"
    assert deployment.titles("general") == [f"Import of {csv} started"]
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
    """The failing view answers 500; its app log and Django's request error both alert."""
    deployment = Deployment(fake_discord, tmp_path, "general", "errors")
    done = deployment.run("django_app.py")
    assert "GET /checkout/ -> 500" in done.stdout
    assert deployment.titles("general") == []
    app_error, server_error = deployment.embeds("errors")
    assert app_error["title"] == "Payment provider timed out for cart c-8812"
    assert fields(app_error)["Logger"] == "shop.checkout"
    assert server_error["title"] == "Internal Server Error: /checkout/"
    assert fields(server_error)["status_code"] == "500"
    assert "RuntimeError: payment provider timed out" in server_error["description"]


def load_example(name: str) -> ModuleType:
    """Import examples/<name>.py by path, as a module of its own."""
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


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
    # Leaving the block ran the lifespan's shutdown: everything is delivered.

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


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def gunicorn_server(
    fake_discord: FakeDiscord, tmp_path: Path
) -> Iterator[tuple[Deployment, str, subprocess.Popen[bytes]]]:
    """gunicorn (2 workers, preloaded app) on a free port; killed if the test left it running."""
    deployment = Deployment(fake_discord, tmp_path, "general")
    # XDG_RUNTIME_DIR: gunicorn >= 25 puts its control socket there rather than in ~/.gunicorn.
    env = dict(deployment.env, PYTHONPATH=str(ROOT), XDG_RUNTIME_DIR=str(tmp_path))
    bind = f"127.0.0.1:{free_port()}"
    command = [sys.executable, "-m", "gunicorn", "-c", "examples/gunicorn.conf.py"]
    with (tmp_path / "gunicorn.log").open("wb") as log:
        server = subprocess.Popen(
            [*command, "examples.gunicorn_app:app", "--bind", bind],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        yield deployment, f"http://{bind}", server
    finally:
        if server.poll() is None:
            server.kill()
            server.wait(TIMEOUT)


def test_gunicorn_app(
    gunicorn_server: tuple[Deployment, str, subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    """Preloaded handler, forked workers: each worker's records arrive (folded) by shutdown."""
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
        served += pool.map(get, range(16))
    server.send_signal(signal.SIGTERM)
    assert server.wait(TIMEOUT) == 0, (tmp_path / "gunicorn.log").read_text()

    worker_pids = {int(text.split()[-1]) for text in served}
    assert server.pid not in worker_pids
    # Per worker: the first record at once, its message edited with the repeats' count: at
    # shutdown it shows "(x N)", N counting them all. Every request is accounted for.
    counts: dict[int, int] = {}
    for embed in deployment.embeds("general"):
        assert embed["title"].startswith("Stock service unreachable while serving /")
        pid = int(re.fullmatch(r"\S+ \((\d+)\) / \S+", fields(embed)["Process/Thread"])[1])
        match = re.search(r"\(x (\d+)\)", embed["title"])
        counts[pid] = max(counts.get(pid, 0), int(match[1]) if match else 1)
    assert set(counts) == worker_pids
    assert sum(counts.values()) == len(served)
