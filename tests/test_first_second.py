"""The journal covers a record from ``emit()`` on (issue 27, point 4): a fresh process that
logs during an outage and is SIGKILLed 50 ms later, its worker still starting, loses nothing;
the next start delivers each record once. On ec27658 the journal was opened by the worker
once its start was over (about 0.6 s idle): the next start delivered 0 of 5."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
from processkit import kept_letters, next_start, run_script, script_env, titles

from discord_logging.testing import FakeDiscord

# A fresh process: the handler is built and 5 errors logged at once; as soon as the journal
# holds them (polled, bounded), the script says whether its worker was still starting (the
# engine not built yet: no request, no store) and is killed, with nothing run at exit. On an
# idle machine that is within a few milliseconds of the log calls (50 ms covers it); a fixed
# 50 ms sleep failed under load (two busy loops and a test suite beside it, once in 3 runs),
# which says when the worker's thread was first scheduled, not what the journal keeps.
LOG_THEN_KILL = """
import glob, signal, time
handler = make_handler()
log.addHandler(handler)
for i in range(5): log.error("record %d in the first second", i)
journal = os.path.join(os.environ["DISCORD_STORE_PATH"], "journal", "*.jnl")
deadline = time.monotonic() + 60
def journaled():
    data = b"".join(open(path, "rb").read() for path in glob.glob(journal))
    return all(f"record {i} in the first second".encode() in data for i in range(5))
while not journaled() and time.monotonic() < deadline:
    time.sleep(0.001)
print("journaled while starting:", not handler.worker.wait_ready(0), flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""
EXPECTED = [f"record {i} in the first second" for i in range(5)]


@pytest.mark.slow
def test_a_process_killed_50_ms_after_logging_in_its_first_second_loses_nothing(
    fake_discord: FakeDiscord, tmp_path: Path
) -> None:
    """Discord fails (503) while a fresh process logs 5 errors and is SIGKILLed as soon as they
    are journaled, its worker still starting; the next start (Discord healthy, logging
    nothing) delivers each of the 5 exactly once and keeps no letter."""
    store = tmp_path / "store"
    env = script_env(fake_discord, fake_discord.add_webhook(host="localhost"), store)
    fake_discord.fail_next(10_000, 503)  # the outage
    killed = run_script(LOG_THEN_KILL, env, tmp_path)
    assert (killed.returncode, titles(fake_discord)) == (-signal.SIGKILL, []), killed.stderr
    # Journaled before the engine was built (on ec27658 the journal only opened after it).
    assert killed.stdout.split() == ["journaled", "while", "starting:", "True"], killed.stdout
    fake_discord.reset()
    again = run_script(next_start(5), env, tmp_path, "again.py")
    assert again.returncode == 0, again.stderr
    assert sorted(titles(fake_discord)) == EXPECTED
    assert kept_letters(store) == []
