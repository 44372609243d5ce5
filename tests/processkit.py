"""Real subprocesses against FakeDiscord reached as ``localhost`` (a name lookup, as
discord.com needs): the exit, children and restart tests."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any, Final

from waiting import FAILSAFE

from discord_logging.delivery.redelivery import REPEAT_NOTE
from discord_logging.testing import FakeDiscord

# Every script builds its handler from these; the close timeout keeps a failing run short.
PRELUDE: Final = """\
import logging, os, sys
from discord_logging import DiscordHandler

def make_handler(**overrides):
    options = dict(
        webhooks={"general": os.environ["TEST_WEBHOOK"]},
        allowed_hosts=os.environ["TEST_HOSTS"],
        aggregate_window=0,
        timeout=1.0,
        engine_options={"retry_deadline": 2.0, "rand": lambda: 0.0},
    )
    return DiscordHandler(**{**options, **overrides})

log = logging.getLogger("app")
log.setLevel(logging.INFO)
log.propagate = False
"""
SCRIPT_TIMEOUT: Final = 2 * FAILSAFE  # above every failsafe a script waits on
# The close timeout of a script whose Discord is healthy: close() returns once all is
# delivered, so a long one costs nothing, and a loaded machine cannot turn a delivery at exit
# into a record kept by chance. Scripts that want what an outage keeps pass a short one.
HEALTHY_CLOSE: Final = FAILSAFE / 2
# Logs 5 errors, waits until the worker took them (the journal is written once it runs: the
# stated window; ``counter`` reaches 5), waits ``pause`` more, then runs ``end``, which ends
# the process (SIGKILL, os._exit, or whatever a test needs first).
LOG_THEN_DIE: Final = """
import signal, time
handler = make_handler({options})
log.addHandler(handler)
for i in range(5):
    log.error("record %d before the end", i)
deadline = time.monotonic() + 60
while handler.stats()["{counter}"] < 5 and time.monotonic() < deadline:
    time.sleep(0.01)
time.sleep({pause})
{end}
time.sleep(30)  # never reached
"""


def script_env(
    fake: FakeDiscord, url: str, store: Path, close_timeout: float = 1.5
) -> dict[str, str]:
    """The environment of a script: webhook via ``localhost``, its store, a short close."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DISCORD_")}
    env.update(
        TEST_WEBHOOK=url,
        TEST_HOSTS=fake.named_host,
        DISCORD_STORE_PATH=str(store),
        DISCORD_CLOSE_TIMEOUT=str(close_timeout),
        PYTHONWARNINGS="error::ResourceWarning",
    )
    return env


def run_script(
    body: str, env: dict[str, str], tmp: Path, name: str = "app.py", python: str = sys.executable
) -> subprocess.CompletedProcess[str]:
    """Run ``PRELUDE + body`` as a file (multiprocessing's spawn re-imports it)."""
    return subprocess.run(
        [python, str(write_script(body, tmp, name))],
        env=env,
        cwd=tmp,
        capture_output=True,
        text=True,
        timeout=SCRIPT_TIMEOUT,
        check=False,
    )


def start_script(body: str, env: dict[str, str], tmp: Path) -> subprocess.Popen[bytes]:
    """Start ``PRELUDE + body`` as a file, its stdin a pipe (to tell it when to go on)."""
    pipe, path = subprocess.PIPE, write_script(body, tmp, "app.py")
    command = [sys.executable, str(path)]
    return subprocess.Popen(command, env=env, cwd=tmp, stdin=pipe, stdout=pipe, stderr=pipe)


def write_script(body: str, tmp: Path, name: str) -> Path:
    """``PRELUDE + body`` as the file ``tmp / name``."""
    path = tmp / name
    path.write_text(PRELUDE + textwrap.dedent(body), encoding="utf-8")
    return path


def next_start(redelivered: int) -> str:
    """The body of "the next start": it logs nothing, builds its handler (which redelivers
    what the store keeps) and waits, bounded, until it redelivered ``redelivered``."""
    return f"""
import time
handler = make_handler()
deadline = time.monotonic() + 60
while handler.stats()["redelivered"] < {redelivered} and time.monotonic() < deadline:
    time.sleep(0.02)
"""


def kept_letters(store: Path) -> list[Any]:
    """The dead letters ``store`` keeps now (opened and closed here)."""
    from discord_logging.store import Store

    opened = Store(store)
    try:
        return opened.dead_letters.letters()
    finally:
        opened.close()


def library_lines(stderr: str) -> list[str]:
    """The lines the library printed (each starts with its name)."""
    return [line for line in stderr.splitlines() if line.startswith("discord-logging:")]


def titles(fake: FakeDiscord, *, marked: bool | None = None) -> list[str]:
    """Embed titles of every accepted message, in order; with ``marked``, only those whose
    footer carries the repeat note (True) or does not (False)."""
    return [
        str(e.get("title", ""))
        for m in fake.messages
        for e in m.embeds
        if marked is None
        or marked == str((e.get("footer") or {}).get("text", "")).startswith(REPEAT_NOTE)
    ]
