"""The table "What holds however the process ends" (README.md, docs/troubleshooting.md), one
test per row and per state of Discord: a real script logs, then ends that way; while Discord is
healthy its records arrive before the process is gone, during an outage they are kept in the
store (said in one stderr line) and the next start, logging nothing, delivers them once."""

from __future__ import annotations

import signal
from collections import Counter
from pathlib import Path
from typing import Final

import pytest
from processkit import (
    HEALTHY_CLOSE,
    kept_letters,
    library_lines,
    next_start,
    run_script,
    script_env,
    titles,
)
from waiting import wait_for

from discord_logging.testing import FakeDiscord

pytestmark = pytest.mark.slow  # real processes

LOGGED: Final = [f"ending record {i}" for i in range(3)]

PREAMBLE: Final = """
import signal, time
log.addHandler(make_handler())
for i in range(3):
    log.error("ending record %d", i)
"""

# How each row ends the script, and the exit statuses its parent may see (an uncaught
# KeyboardInterrupt ends with 1, or by SIGINT where the interpreter re-raises it).
ENDINGS: Final = {
    "return from main": ("", {0}),
    "sys.exit(2)": ("sys.exit(2)", {2}),
    "uncaught exception": ("raise RuntimeError('the application failed')", {1}),
    # Python installs its Ctrl-C handler at start only where SIGINT is not ignored; a test
    # run started in the background by a shell (nohup, `&`) ignores it, so say it here.
    "SIGINT (Ctrl-C)": (
        "signal.signal(signal.SIGINT, signal.default_int_handler)\n"
        "os.kill(os.getpid(), signal.SIGINT); time.sleep(30)",
        {1, -signal.SIGINT},
    ),
    "SIGTERM, default disposition": (
        "os.kill(os.getpid(), signal.SIGTERM); time.sleep(30)",
        {-signal.SIGTERM},
    ),
    "SIGTERM, the application's own handler": (
        "signal.signal(signal.SIGTERM, lambda *_: sys.exit(3))\n"
        "os.kill(os.getpid(), signal.SIGTERM); time.sleep(30)",
        {3},
    ),
    # The signal comes while the main thread waits in the library (Discord answers slowly
    # here, so the wait is still on): the drain runs inside that wait.
    "SIGTERM while the application waits in flush()": (
        "import threading\n"
        "threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGTERM)).start()\n"
        "log.handlers[-1].flush(60); print('flush returned', flush=True); time.sleep(30)",
        {-signal.SIGTERM},
    ),
}
# Discord answers in 0.5 s for these rows: the script's wait is still on when the signal comes
# (it never says "flush returned"); in an outage, the request the drain's deadline cut off
# is then answered (and created) by the fake after all, as Discord may: the next start posts
# it again with the repeat note.
SLOW: Final = {"SIGTERM while the application waits in flush()"}


@pytest.mark.parametrize("ending", list(ENDINGS))
def test_healthy_discord_gets_every_record_before_the_end(
    fake_discord: FakeDiscord, tmp_path: Path, ending: str
) -> None:
    """Discord healthy: all 3 records arrive once, before the process is gone, nothing kept,
    and the library says nothing; the parent sees the status the ending gives."""
    code, status = ENDINGS[ending]
    url = fake_discord.add_webhook(host="localhost")
    store = tmp_path / "store"
    if ending in SLOW:
        fake_discord.set_latency(0.5)
    # A healthy Discord: the long close returns once all is delivered, so a loaded machine
    # cannot turn a delivery at exit into letters kept by the deadline (CI at f72dd0b, loaded:
    # 3 records delivered and 3 kept, "cut off by the close deadline" of 1.5 s).
    env = script_env(fake_discord, url, store, HEALTHY_CLOSE)
    done = run_script(PREAMBLE + code, env, tmp_path)
    assert done.returncode in status, done.stderr
    assert "flush returned" not in done.stdout
    assert sorted(titles(fake_discord)) == LOGGED, done.stderr
    assert library_lines(done.stderr) == []
    assert kept_letters(store) == []


@pytest.mark.parametrize("ending", list(ENDINGS))
def test_an_outage_keeps_every_record_for_the_next_start(
    fake_discord: FakeDiscord, tmp_path: Path, ending: str
) -> None:
    """Discord down (503): the 3 records are kept in the store, one stderr line says where;
    the next start, logging nothing, delivers each once and leaves the store empty."""
    code, status = ENDINGS[ending]
    url = fake_discord.add_webhook(host="localhost")
    store = tmp_path / "store"
    fake_discord.fail_next(10_000, 503)
    if ending in SLOW:
        fake_discord.set_latency(0.5)
    done = run_script(PREAMBLE + code, script_env(fake_discord, url, store), tmp_path)
    assert done.returncode in status, done.stderr
    (line,) = library_lines(done.stderr)
    assert "3 dead letters kept in the store" in line, line
    fake_discord.reset()
    again = run_script(next_start(3), script_env(fake_discord, url, store), tmp_path, "again.py")
    assert again.returncode == 0, again.stderr
    assert wait_for(lambda: len(titles(fake_discord)) >= 3)
    assert "flush returned" not in done.stdout
    if ending in SLOW:
        assert sorted(set(titles(fake_discord))) == LOGGED
        unmarked = Counter(titles(fake_discord, marked=False))
        assert all(n == 1 for n in unmarked.values()), unmarked  # rule 3
    else:
        assert sorted(titles(fake_discord)) == LOGGED
    assert kept_letters(store) == []
