"""A mute set from the CLI silences two running processes within seconds, and one silent
summary follows when it ends (real processes, the real CLI, FakeDiscord on loopback)."""

from __future__ import annotations

import json
import sqlite3
import subprocess
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from entry_point import console_script
from processkit import HEALTHY_CLOSE, script_env, start_script
from waiting import FAILSAFE, wait_for

from discord_logging.render.payload import SUPPRESS_NOTIFICATIONS
from discord_logging.testing import FakeDiscord

pytestmark = pytest.mark.slow

# Logs each line read from stdin (CRITICAL when it starts with "crit"), waits until it was
# delivered or muted, then answers with its muted count.
LOG_WHAT_IT_IS_TOLD = """
import json
handler = make_handler(aggregate_window=0, close_timeout={close})
log.addHandler(handler)
handler.wait_started(60)
print(json.dumps({{"muted": 0}}), flush=True)
for line in sys.stdin:
    word = line.strip()
    if word == "quit":
        break
    (log.critical if word.startswith("crit") else log.warning)(word)
    handler.flush(60)
    print(json.dumps({{"muted": handler.stats()["muted"]}}), flush=True)
handler.close()
"""


class App:
    """One running process of the fleet."""

    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        self.process = process
        self.muted = self.answer()

    def answer(self) -> int:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        assert line, self.process.stderr.read().decode() if self.process.stderr else ""
        return int(json.loads(line)["muted"])

    def log(self, word: str) -> int:
        assert self.process.stdin is not None
        self.process.stdin.write(f"{word}\n".encode())
        self.process.stdin.flush()
        self.muted = self.answer()
        return self.muted


def cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """The installed ``discord-logging`` command, as an operator runs it."""
    command = [console_script(), *args]
    return subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=FAILSAFE, check=False
    )


def tallied(store: Path) -> int:
    """Records the fleet's tallies in the shared table count so far."""
    # closing(): a sqlite3 connection's own ``with`` ends the transaction, not the connection
    # (this is polled: one left open per poll, which Python 3.13 warns of).
    with closing(sqlite3.connect(store / "mutes.sqlite3")) as db:
        rows = db.execute("SELECT data FROM tallies").fetchall()
    return sum(sum(json.loads(data)["counts"].values()) for (data,) in rows)


def titles(fake: FakeDiscord) -> list[str]:
    return [str(e.get("title", "")) for m in fake.messages for e in m.embeds]


def test_a_cli_mute_silences_two_running_processes_and_one_summary_follows(
    tmp_path: Path,
) -> None:
    """Two processes share a store; `mute general` from the CLI holds their records within
    seconds (CRITICAL passes), the records are in the history as muted, and `unmute` brings
    one silent summary counting what both held."""
    store = tmp_path / "store"
    with FakeDiscord() as fake:
        url = fake.add_webhook(host="localhost")
        env = script_env(fake, url, store)
        body = LOG_WHAT_IT_IS_TOLD.format(close=HEALTHY_CLOSE)
        apps: list[App] = []
        try:
            for name in ("one", "two"):
                (tmp_path / name).mkdir()
                apps.append(App(start_script(body, env, tmp_path / name)))
            for app in apps:
                app.log("before the mute")
            assert wait_for(lambda: titles(fake).count("before the mute") == 2)
            done = cli("mute", "general", "--for", "1h", "--reason", "migration", env=env)
            assert done.returncode == 0, done.stderr
            # Each process honours the mute within seconds: probe until a record is held.
            for index, app in enumerate(apps):
                for probe in range(int(FAILSAFE / 0.5)):
                    if app.log(f"probe {index}-{probe}") > 0:
                        break
                assert app.muted == 1, "the mute was not honoured"
            for app in apps:
                assert app.log("held while muted") == 2
            apps[0].log("crit passes the mute")
            assert wait_for(lambda: "crit passes the mute" in " ".join(titles(fake)))
            assert "held while muted" not in " ".join(titles(fake))
            # Both processes added their tallies to the shared table before it ends.
            assert wait_for(lambda: tallied(store) == 4)
            listed = json.loads(cli("mutes", "--json", env=env).stdout)
            assert [m["reason"] for m in listed] == ["migration"]
            done = cli("unmute", "all", env=env)
            assert done.returncode == 0, done.stderr
            assert wait_for(lambda: any("muted: general" in t for t in titles(fake)))
            for app in apps:
                app.log("after the mute")
            assert wait_for(lambda: titles(fake).count("after the mute") == 2)
        finally:
            for app in apps:
                if app.process.poll() is None:
                    app.process.communicate(b"quit\n", timeout=FAILSAFE)
        summaries = [m for m in fake.messages if "muted: general" in m.embeds[0]["title"]]
        assert len(summaries) == 1
        (summary,) = summaries
        assert summary.payload.get("flags") == SUPPRESS_NOTIFICATIONS
        fields = {f["name"]: f["value"] for f in summary.embeds[0]["fields"]}
        assert fields["Muted"] == "general: 4"
        assert summary.embeds[0]["title"] == "4 records muted: general"
    history = muted_history(store)
    assert (
        sorted(e["title"] for e in history if e["title"] == "held while muted")
        == ["held while muted"] * 2
    )
    assert all("migration" in e["error"] for e in history)


def muted_history(store: Path) -> list[dict[str, Any]]:
    from discord_logging.store import Store

    opened = Store(store)
    try:
        assert opened.history is not None
        return list(opened.history.query(status="muted", limit=100))
    finally:
        opened.close()
