"""Running the examples as a user runs them: a FakeDiscord webhook per alert type in the
DISCORD_* variables, the script or server as a real process, what arrived read per webhook."""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import urlsplit

from waiting import FAILSAFE

from discord_logging.testing import FakeDiscord

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
TIMEOUT = 60
SERVER_WAIT = FAILSAFE  # seconds a server has to start, or an alert to arrive


class Deployment:
    """The environment of one example run: a FakeDiscord webhook per alert type."""

    def __init__(self, fake: FakeDiscord, tmp_path: Path, *types: str) -> None:
        self.fake = fake
        self.tmp_path = tmp_path
        self.servers: dict[str, subprocess.Popen[bytes]] = {}
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("DISCORD_")}
        self.env["DISCORD_ALLOWED_HOSTS"] = fake.host
        self.env["DISCORD_STORE_PATH"] = str(tmp_path / "store")
        self._types: dict[str, str] = {}  # webhook id -> alert type
        for kind in types:
            url = fake.add_webhook()
            self.env[f"DISCORD_WEBHOOK_{kind.upper()}"] = url
            self._types[urlsplit(url).path.split("/")[-2]] = kind

    def run(self, script: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        """Run ``python examples/<script>`` from the repository root, with this environment
        (plus ``env``); it must succeed."""
        done = subprocess.run(
            [sys.executable, f"examples/{script}", *args],
            cwd=ROOT,
            env={**self.env, **env},
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

    def wait_for(self, kind: str, count: int, timeout: float = SERVER_WAIT) -> list[dict[str, Any]]:
        """The embeds of ``kind`` once there are ``count`` of them; fails after ``timeout``."""
        deadline = time.monotonic() + timeout
        while len(self.embeds(kind)) < count:
            assert time.monotonic() < deadline, f"{kind}: {self.titles(kind)}; {self.logs()}"
            time.sleep(0.05)
        return self.embeds(kind)

    # -- servers: real processes started for one test ------------------------------------

    def start(self, name: str, *command: str, **env: str) -> subprocess.Popen[bytes]:
        """Start ``command`` from the repository root with this environment (plus ``env``);
        its output goes to ``<name>.log``. :meth:`kill_servers` ends what is left running."""
        with (self.tmp_path / f"{name}.log").open("wb") as log:
            server = subprocess.Popen(
                list(command),
                cwd=ROOT,
                env={**self.env, **env},
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.servers[name] = server
        return server

    def log(self, name: str) -> str:
        return (self.tmp_path / f"{name}.log").read_text(encoding="utf-8", errors="replace")

    def logs(self) -> str:
        """Every server's output, for an assertion's message."""
        return "\n".join(f"--- {name}:\n{self.log(name)[-3000:]}" for name in self.servers)

    def stop(self, name: str, sig: int = signal.SIGTERM) -> int:
        """Send ``sig`` to server ``name`` and wait for it to end; its exit code."""
        server = self.servers[name]
        server.send_signal(sig)
        return server.wait(TIMEOUT)

    def kill_servers(self) -> None:
        for server in self.servers.values():
            if server.poll() is None:
                server.kill()
                server.wait(TIMEOUT)


def fields(embed: dict[str, Any]) -> dict[str, str]:
    """An embed's fields, name to value."""
    return {field["name"]: field["value"] for field in embed.get("fields", [])}


def load_example(name: str) -> ModuleType:
    """Import examples/<name>.py by path, as a module of its own."""
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
