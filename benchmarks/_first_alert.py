"""A fresh process's first alert, sent the way a user's program sends it: the handler built
by ``logging.config.dictConfig``, one ``critical`` logged at once, FakeDiscord receiving it in
the benchmark's own process (so in another process than the one measured) on loopback.

Times are ``time.monotonic()`` on both sides: CLOCK_MONOTONIC, one clock for every process of
a Linux machine, which is also FakeDiscord's ``received_at``. Used by startup.py and
footprint.py.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Final

from discord_logging.testing import FakeDiscord

FAILSAFE: Final = 60.0  # seconds a fresh process has to deliver its first alert

# The child's first lines (argv: webhook URL, allowed host, store path): the documented
# dictConfig, then the alert, its emit time on stdout; it waits on stdin until the benchmark
# saw the alert arrive.
CONFIGURE_AND_ALERT = """
import json, logging.config, sys, time
discord = {"class": "discord_logging.DiscordHandler", "level": "ERROR"}
discord.update(webhooks={"general": sys.argv[1]}, allowed_hosts=sys.argv[2])
discord["store_path"] = sys.argv[3]
root = {"handlers": ["discord"], "level": "INFO"}
config = {"version": 1, "disable_existing_loggers": False, "handlers": {"discord": discord}}
logging.config.dictConfig({**config, "root": root})
emitted = time.monotonic()
logging.getLogger("app").critical("first alert of a fresh process")
print(json.dumps({"emitted": emitted}), flush=True)
sys.stdin.readline()
"""

# What a process holds at rest: its resident memory and its threads besides the main one
# (Python's, by name, and the kernel's count, which includes threads Python does not know).
REPORT = """
import json, os, threading, time
# At rest: what the first alert started has settled (the store's writer ends 2 s after its
# last write: store/_writer.py IDLE_END).
time.sleep(3.0)
with open("/proc/self/status") as status:
    rss_kb = next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))
print(json.dumps({
    "rss_mb": rss_kb / 1024,
    "threads": sorted(t.name for t in threading.enumerate() if t is not threading.main_thread()),
    "os_threads": len(os.listdir("/proc/self/task")) - 1,
}), flush=True)
"""


@dataclass
class FirstAlert:
    """One fresh process's first alert: when it started, logged, and Discord received it."""

    started: float
    emitted: float
    received: float
    report: dict[str, Any] = field(default_factory=dict)

    @property
    def emit_to_discord(self) -> float:
        return self.received - self.emitted

    @property
    def start_to_discord(self) -> float:
        return self.received - self.started


def first_alert(
    fake: FakeDiscord, store: str, after: str = "", python: str = sys.executable
) -> FirstAlert:
    """Run :data:`CONFIGURE_AND_ALERT` (then ``after``, e.g. :data:`REPORT`) in a fresh
    ``python`` against a new webhook of ``fake``; the last JSON line ``after`` prints is the
    ``report``."""
    url = fake.add_webhook()
    webhook_id = url.split("/")[-2]
    started = time.monotonic()
    child = subprocess.Popen(
        [python, "-c", CONFIGURE_AND_ALERT + after, url, fake.host, store],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        emitted = json.loads(child.stdout.readline())["emitted"]
        deadline = time.monotonic() + FAILSAFE
        while not fake.messages_for(webhook_id):
            if time.monotonic() > deadline:
                raise RuntimeError(f"no alert within {FAILSAFE:.0f} s")
            time.sleep(0.002)
        received = fake.messages_for(webhook_id)[0].received_at
        out, _ = child.communicate("delivered\n", timeout=FAILSAFE)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    lines = out.strip().splitlines()
    report = json.loads(lines[-1]) if lines else {}
    return FirstAlert(started, emitted, received, report)


def wall(argv: list[str]) -> float:
    """Seconds one run of ``argv`` takes, start to exit."""
    started = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


# Whether the interpreter runs the installed packages from compiled bytecode (``.pyc``, as pip
# and ``uv pip install --compile-bytecode`` leave them) or compiles their sources at every
# start (uv's default install, with PYTHONDONTWRITEBYTECODE=1 as in many images): compiling
# costs time at start-up and leaves native memory fragmented in the threads that imported.
ENVIRONMENT = """
import importlib.util, json, os, sys
import jinja2
compiled = os.path.exists(importlib.util.cache_from_source(jinja2.__file__))
print(json.dumps({"python": sys.version.split()[0], "prefix": sys.prefix, "compiled": compiled}))
"""


def environment(python: str) -> str:
    """One line saying which interpreter and venv ``python`` is, and whether its packages'
    bytecode is compiled."""
    done = subprocess.run(
        [python, "-c", ENVIRONMENT], check=True, capture_output=True, text=True, timeout=60
    )
    found = json.loads(done.stdout)
    bytecode = "compiled" if found["compiled"] else "NOT compiled (sources compiled at each start)"
    return f"Python {found['python']} in {found['prefix']}; site-packages bytecode {bytecode}"
