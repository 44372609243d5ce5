"""``discord-logging fake-discord``: FakeDiscord as a server for other processes, run as a
real subprocess; a real uvicorn app's alerts arrive at it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from entry_point import console_script, run
from example_runs import ROOT
from redis_server import free_port
from waiting import FAILSAFE, wait_for

from discord_logging.cli import main
from discord_logging.testing._local import FailPlan, LocalFakeDiscord, parse_fail


class FakeDiscordProcess:
    """``discord-logging fake-discord ARGS`` started; its environment lines read."""

    def __init__(self, tmp: Path, started: list[subprocess.Popen[str]], *args: str) -> None:
        self.err_path = tmp / "fake-discord.err"
        with self.err_path.open("wb") as err:
            self.process = subprocess.Popen(
                [console_script(), "fake-discord", *args],
                stdout=subprocess.PIPE,
                stderr=err,
                text=True,
            )
        started.append(self.process)  # killed at the test's end if still running
        self.env: dict[str, str] = {}
        assert self.process.stdout is not None
        while "DISCORD_ALLOWED_HOSTS" not in self.env:
            line = self.process.stdout.readline()
            assert line, f"ended before its environment: {self.stderr()}"
            name, value = line.strip().split("=", 1)
            self.env[name] = value
        self.base = f"http://{self.env['DISCORD_ALLOWED_HOSTS']}"

    def stderr(self) -> str:
        return self.err_path.read_text(errors="replace")

    def listing(self) -> list[dict[str, object]]:
        answer = httpx.get(f"{self.base}/fake/messages", timeout=10)
        assert answer.status_code == 200
        messages: list[dict[str, object]] = answer.json()["messages"]
        return messages

    def end(self, signum: int) -> int:
        self.process.send_signal(signum)
        return self.process.wait(FAILSAFE)


@pytest.fixture
def kill_left(tmp_path: Path) -> Iterator[list[subprocess.Popen[str]]]:
    """Processes a test started, killed if still running at its end."""
    started: list[subprocess.Popen[str]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait(FAILSAFE)
        if process.stdout is not None:
            process.stdout.close()


@pytest.mark.slow
def test_a_uvicorn_apps_alerts_arrive_and_sigterm_ends_it_cleanly(
    tmp_path: Path, kill_left: list[subprocess.Popen[str]]
) -> None:
    """The printed lines configure a real uvicorn app (examples/fastapi_app.py); its 500's
    error alert is listed at /fake/messages and recorded as a JSON line; SIGTERM ends the
    server with 0, saying how many messages it received."""
    record = tmp_path / "received.jsonl"
    fake = FakeDiscordProcess(tmp_path, kill_left, "--webhooks", "2", "--record", str(record))
    assert set(fake.env) == {
        "DISCORD_WEBHOOK_GENERAL",
        "DISCORD_WEBHOOK_ERROR",
        "DISCORD_ALLOWED_HOSTS",
    }
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("DISCORD_")}
    env.update(fake.env, DISCORD_STORE_PATH=str(tmp_path / "store"))
    log = tmp_path / "uvicorn.log"
    with log.open("wb") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "examples.fastapi_app:app", "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
        )
    kill_left.append(server)
    assert wait_for(lambda: b"Application startup complete." in log.read_bytes()), log.read_text()
    assert httpx.get(f"http://127.0.0.1:{port}/orders/7", timeout=10).status_code == 500
    assert wait_for(lambda: any(m["webhook"] == "error" for m in fake.listing()))
    [alert] = [m for m in fake.listing() if m["webhook"] == "error"]
    assert alert["title"] == "Unhandled error on GET /orders/7"
    server.send_signal(signal.SIGTERM)
    server.wait(FAILSAFE)
    assert fake.end(signal.SIGTERM) == 0, fake.stderr()
    assert "stopped; 1 message received" in fake.stderr()
    [line] = record.read_text().splitlines()
    assert json.loads(line)["title"] == "Unhandled error on GET /orders/7"


@pytest.mark.slow
def test_planned_failures_then_sigint_ends_it(
    tmp_path: Path, kill_left: list[subprocess.Popen[str]]
) -> None:
    """``--fail 503:2`` answers the next two posts 503, then Discord's 200 again; Ctrl-C
    (SIGINT) ends it with 0."""
    fake = FakeDiscordProcess(tmp_path, kill_left, "--fail", "503:2")
    url = fake.env["DISCORD_WEBHOOK_GENERAL"]
    statuses = [
        httpx.post(url, json={"content": f"post {n}"}, timeout=10).status_code for n in range(3)
    ]
    assert statuses == [503, 503, 204]
    assert [m["title"] for m in fake.listing()] == ["post 2"]
    assert fake.end(signal.SIGINT) == 0, fake.stderr()


@pytest.mark.slow
def test_a_port_taken_and_bad_options_are_said(tmp_path: Path) -> None:
    """A port in use or a record file that cannot be written: exit 1 naming the option (and
    the fix); a bad --fail: usage error (2)."""
    with LocalFakeDiscord() as taken:
        port = taken.host.rsplit(":", 1)[1]
        busy = run("fake-discord", "--port", port)
    assert busy.returncode == 1
    assert f"--port {port}: cannot listen" in busy.stderr
    assert "--port 0 for a free one" in busy.stderr
    unwritable = run("fake-discord", "--record", str(tmp_path / "missing" / "r.jsonl"))
    assert unwritable.returncode == 1
    assert "--record " in unwritable.stderr
    assert "cannot be written" in unwritable.stderr
    bad = run("fake-discord", "--fail", "503:soon")
    assert bad.returncode == 2
    assert "STATUS:DURATION" in bad.stderr


@pytest.mark.parametrize(
    ("text", "plan"),
    [
        ("503:30s", FailPlan(503, seconds=30.0)),
        ("502:2m", FailPlan(502, seconds=120.0)),
        ("500:3", FailPlan(500, count=3)),
        ("429:5", FailPlan(429, count=5)),
    ],
)
def test_fail_plans(text: str, plan: FailPlan) -> None:
    """--fail's forms: a duration (s, m) or a count."""
    assert parse_fail(text) == plan


@pytest.mark.parametrize("text", ["503", "200:3", "429:10s", "500:1.5", "x:3"])
def test_fail_plans_refused(text: str) -> None:
    """Anything else is refused with the forms it takes."""
    with pytest.raises(ValueError, match=r"'"):
        parse_fail(text)


def test_an_outage_then_the_next_and_the_record(tmp_path: Path) -> None:
    """Outages follow each other; forum webhooks open a post per message; every accepted
    message is appended to the record file once."""
    record = tmp_path / "received.jsonl"
    with LocalFakeDiscord(webhooks=3, forum=True, record=record) as fake:
        fake.plan([FailPlan(503, seconds=FAILSAFE)])
        url = fake.environment()[2].split("=", 1)[1]  # critical's
        assert url.endswith("/100000000000000003/fake-critical-token")
        post = {"content": "down", "thread_name": "outage"}
        assert httpx.post(url, json=post, timeout=10).status_code == 503
        fake.plan([])  # the outage ends
        assert httpx.post(url, json=post, timeout=10).status_code == 204
    [line] = record.read_text().splitlines()
    entry = json.loads(line)
    assert (entry["webhook"], entry["title"]) == ("critical", "outage")
    assert entry["thread_id"] is not None


def test_in_process_it_serves_until_sigterm(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The command's own run, in this process: the lines on stdout (JSON with --json), a
    message received and recorded, SIGTERM (to this process: the command's handler takes it)
    ends it with 0 and the signal handlers it replaced are back."""
    record = tmp_path / "received.jsonl"
    printed = threading.Event()
    environment = LocalFakeDiscord.environment

    def said(self: LocalFakeDiscord) -> list[str]:
        printed.set()
        return environment(self)

    monkeypatch.setattr(LocalFakeDiscord, "environment", said)
    before = signal.getsignal(signal.SIGTERM)

    def client() -> None:
        assert printed.wait(FAILSAFE)
        url = f"http://127.0.0.1:{port}/api/v10/webhooks/100000000000000001/fake-general-token"
        httpx.post(url, json={"content": "from a client"}, timeout=10)
        os.kill(os.getpid(), signal.SIGTERM)

    port = free_port()
    thread = threading.Thread(target=client)
    thread.start()
    code = main(["--json", "fake-discord", "--port", str(port), "--record", str(record)])
    thread.join(FAILSAFE)
    assert code == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["DISCORD_ALLOWED_HOSTS"] == f"127.0.0.1:{port}"
    assert "stopped; 1 message received" in err
    assert json.loads(record.read_text())["title"] == "from a client"
    assert signal.getsignal(signal.SIGTERM) is before
