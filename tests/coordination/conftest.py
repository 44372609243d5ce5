"""Fixtures for the coordination tests: a real ``redis-server`` on a free loopback port."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from discord_logging.coordination.ledger import Limits

WORKER = Path(__file__).with_name("slot_worker.py")

# Small limits, so a test sees every rule within a handful of requests.
SMALL = Limits(channel_limit=3, channel_window=10.0, global_limit=5, global_window=2.0)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class RedisServer:
    """One ``redis-server`` without persistence; :meth:`stop` and :meth:`start` it mid-test."""

    binary: str
    port: int
    directory: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.directory),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"redis-server did not start on port {self.port}")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A started ``redis-server`` on 127.0.0.1 (free port, nothing saved), stopped after.

    Skipped when the machine has none, except in CI (``CI=true``), where .ci/run installs it:
    there a missing server fails the run instead of hiding the Redis tests.
    """
    binary = shutil.which("redis-server")
    if binary is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("redis-server is missing in CI: .ci/run installs the Debian package")
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    server = RedisServer(binary, free_port(), tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def run_workers(
    backend: str, where: str, *, processes: int, slots: int, limit: int, window: float
) -> list[tuple[float, float]]:
    """Run ``processes`` real processes taking ``slots`` slots each from one shared backend;
    returns every slot's (taken, answered) stamps."""
    args = [str(slots), str(limit), str(window)]
    workers = [
        subprocess.Popen(
            [sys.executable, str(WORKER), backend, where, *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
        )
        for _ in range(processes)
    ]
    intervals = []
    for worker in workers:
        out, err = worker.communicate(timeout=60)
        assert worker.returncode == 0, err
        for line in out.splitlines():
            taken, answered = map(float, line.split())
            intervals.append((taken, answered))
    return intervals
