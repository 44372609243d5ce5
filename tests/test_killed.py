"""A process killed without its exit (SIGKILL, the OOM killer, ``os._exit``) leaves its
records in its journal; the next start takes them into the store and delivers them, once
(issue 19, point 1). Real subprocesses against FakeDiscord through ``localhost``."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from processkit import PRELUDE, kept_letters, run_script, script_env, titles
from waiting import FAILSAFE, wait_for

from discord_logging.store import Store
from discord_logging.testing import FakeDiscord

pytestmark = pytest.mark.slow  # real processes

LOG_THEN_DIE = """
import signal, time
handler = make_handler()
log.addHandler(handler)
for i in range(5):
    log.error("record %d before the end", i)
# The journal is written by the worker once it runs (the stated window): wait until it took
# the records (or delivered them), then die.
deadline = time.monotonic() + 60
while handler.stats()["{counter}"] < 5 and time.monotonic() < deadline:
    time.sleep(0.01)
time.sleep({pause})
{end}
time.sleep(30)  # never reached
"""
KILL = "os.kill(os.getpid(), signal.SIGKILL)"
EXIT = "os._exit(1)"
# The next start: logs nothing, waits (bounded) until what it redelivered reaches ``want``.
NEXT_START = """
import time
want = int(os.environ.get("TEST_WANT", "5"))
deadline = time.monotonic() + float(os.environ.get("TEST_WAIT", "60"))  # a failsafe
handler = make_handler()
handler.flush(deadline - time.monotonic())  # the worker ran: it took the dead journals first
while handler.stats()["redelivered"] < want and time.monotonic() < deadline:
    time.sleep(0.02)
time.sleep(float(os.environ.get("TEST_LINGER", "0")))
print(handler.stats()["journal_recovered"])
"""
EXPECTED = [f"record {i} before the end" for i in range(5)]


def _journal_files(store: Path) -> list[str]:
    folder = store / "journal"
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


@pytest.mark.parametrize("end", [KILL, EXIT], ids=["SIGKILL", "os._exit"])
def test_records_of_a_process_killed_during_an_outage_are_delivered_by_the_next_start(
    fake_discord: FakeDiscord, tmp_path: Path, end: str
) -> None:
    """Discord fails (503) while a script logs 5 errors and is killed 0.3 s after its worker
    took them: nothing
    ran at exit, yet the next start (logging nothing) takes the 5 from the dead process's
    journal and delivers each exactly once, leaving neither letters nor journal behind."""
    url = fake_discord.add_webhook(host="localhost")
    store = tmp_path / "store"
    fake_discord.fail_next(10_000, 503)
    script = LOG_THEN_DIE.format(counter="emitted", pause=0.3, end=end)
    done = run_script(script, script_env(fake_discord, url, store), tmp_path)
    expected_status = -signal.SIGKILL if end == KILL else 1
    assert done.returncode == expected_status, done.stderr
    assert titles(fake_discord) == []
    assert _journal_files(store) != []
    fake_discord.reset()
    again = run_script(NEXT_START, script_env(fake_discord, url, store), tmp_path, "again.py")
    assert again.returncode == 0, again.stderr
    assert again.stdout.split() == ["5"]
    assert sorted(titles(fake_discord)) == EXPECTED
    kept = Store(store)
    assert kept.dead_letters.letters() == []
    kept.close()
    assert _journal_files(store) == []


@pytest.mark.parametrize("end", [KILL, EXIT], ids=["SIGKILL", "os._exit"])
def test_a_process_killed_after_delivery_leaves_nothing_to_post_again(
    fake_discord: FakeDiscord, tmp_path: Path, end: str
) -> None:
    """Discord healthy: a script delivers 5 records and is then killed (SIGKILL, or it ends
    with ``os._exit``); its journal says they were delivered, so the next start posts nothing
    (no record twice)."""
    url = fake_discord.add_webhook(host="localhost")
    store = tmp_path / "store"
    body = LOG_THEN_DIE.format(counter="delivered", pause=0.05, end=end)
    done = run_script(body, script_env(fake_discord, url, store), tmp_path)
    assert done.returncode == (-signal.SIGKILL if end == KILL else 1), done.stderr
    assert sorted(titles(fake_discord)) == EXPECTED
    env = dict(script_env(fake_discord, url, store), TEST_WANT="0", TEST_LINGER="0.5")
    again = run_script(NEXT_START, env, tmp_path, "again.py")
    assert again.returncode == 0, again.stderr
    assert again.stdout.split() == ["0"]
    assert sorted(titles(fake_discord)) == EXPECTED
    assert _journal_files(store) == []


def test_two_processes_starting_together_take_a_dead_journal_once(
    fake_discord: FakeDiscord, tmp_path: Path
) -> None:
    """Two processes start at once beside a dead process's journal: one takes it (an
    exclusive rename), the 5 records are kept once and delivered once between them."""
    url = fake_discord.add_webhook(host="localhost")
    store = tmp_path / "store"
    fake_discord.fail_next(10_000, 503)
    script = LOG_THEN_DIE.format(counter="emitted", pause=0.3, end=KILL)
    done = run_script(script, script_env(fake_discord, url, store), tmp_path)
    assert done.returncode == -signal.SIGKILL, done.stderr
    fake_discord.reset()
    path = tmp_path / "both.py"
    path.write_text(PRELUDE + NEXT_START, encoding="utf-8")
    env = dict(script_env(fake_discord, url, store), TEST_WANT="0", TEST_LINGER="1.5")
    starts = [
        subprocess.Popen(
            [sys.executable, str(path)], env=env, cwd=tmp_path, stdout=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=30)[0] for p in starts]
    assert [p.returncode for p in starts] == [0, 0]
    assert sorted(int(out.split()[0]) for out in outputs) == [0, 5]
    assert sorted(titles(fake_discord)) == EXPECTED
    assert _journal_files(store) == []


def test_a_running_parent_delivers_what_its_killed_child_journaled(
    fake_discord: FakeDiscord, tmp_path: Path
) -> None:
    """A bare ``os.fork()`` child logs during an outage and ends with ``os._exit`` without
    closing its handler; the parent, still running and logging nothing, takes the child's
    journal at its next look and delivers the record once Discord is back."""
    url = fake_discord.add_webhook(host="localhost")
    store = tmp_path / "store"
    fake_discord.fail_next(10_000, 503)
    body = """
    import time
    import discord_logging.delivery.journaling as journaling
    journaling.LOOK_INTERVAL = 0.2  # a look every 0.2 s instead of every minute
    handler = make_handler()
    log.addHandler(handler)
    pid = os.fork()
    if pid == 0:
        log.error("from the child")
        deadline = time.monotonic() + 60
        while handler.stats()["emitted"] < 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.2)
        os._exit(0)
    os.waitpid(pid, 0)
    print("child gone", flush=True)
    sys.stdin.readline()  # Discord is back
    deadline = time.monotonic() + 60
    while handler.stats()["redelivered"] < 1 and time.monotonic() < deadline:
        time.sleep(0.02)
    print(handler.stats()["journal_recovered"], flush=True)
    """
    path = tmp_path / "fork.py"
    path.write_text(PRELUDE + textwrap.dedent(body), encoding="utf-8")
    with subprocess.Popen(
        [sys.executable, str(path)],
        env=script_env(fake_discord, url, store),
        cwd=tmp_path,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as parent:
        assert parent.stdout is not None
        assert parent.stdout.readline().strip() == "child gone"
        assert titles(fake_discord) == []
        fake_discord.reset()
        out, _ = parent.communicate("back\n", timeout=30)
    assert parent.returncode == 0
    assert out.split() == ["1"]
    assert titles(fake_discord) == ["from the child"]


def test_a_letter_in_flight_when_its_redelivering_process_is_killed_is_posted_again_marked(
    fake_discord: FakeDiscord, tmp_path: Path
) -> None:
    """A record kept through an outage is taken back by the next start, whose request is out
    (Discord holds it) when that process is SIGKILLed; Discord then creates the message after
    all. The start after takes the letter over from the dead claimant as uncertain: it is
    posted again with the repeat note, never twice without it (rule 3)."""
    url = fake_discord.add_webhook(host="localhost")
    store = tmp_path / "store"
    env = script_env(fake_discord, url, store)
    fake_discord.fail_next(10_000, 503)
    done = run_script(
        "log.addHandler(make_handler())\nlog.error('kept then taken')\n", env, tmp_path
    )
    assert done.returncode == 0, done.stderr
    fake_discord.reset()
    fake_discord.set_hang(True)
    path = tmp_path / "taker.py"
    path.write_text(PRELUDE + NEXT_START, encoding="utf-8")
    taker = subprocess.Popen(
        [sys.executable, str(path)], env={**env, "TEST_WANT": "1"}, cwd=tmp_path
    )
    try:
        assert wait_for(lambda: fake_discord.pending >= 1)
    finally:
        taker.kill()
        taker.wait(FAILSAFE)
    fake_discord.set_hang(False)  # Discord acts on the request after all
    assert wait_for(lambda: titles(fake_discord) == ["kept then taken"])
    again = run_script(NEXT_START, {**env, "TEST_WANT": "1"}, tmp_path, "again.py")
    assert again.returncode == 0, again.stderr
    assert titles(fake_discord, marked=False) == ["kept then taken"]
    assert titles(fake_discord, marked=True) == ["kept then taken"]
    assert kept_letters(store) == []


FIRST_THEN_IN_FLIGHT = """
import time
from pathlib import Path
handler = make_handler()
log.addHandler(handler)
log.error("delivered first")
deadline = time.monotonic() + 60
while not Path("go").exists() and time.monotonic() < deadline:
    time.sleep(0.01)
log.error("in flight")
time.sleep(30)  # killed while Discord holds the request
"""


def test_a_record_in_flight_when_its_process_is_killed_is_posted_again_marked(
    fake_discord: FakeDiscord, tmp_path: Path
) -> None:
    """A script delivers one error, then logs another whose request is out (Discord holds it)
    when the script is SIGKILLed; Discord then creates the message after all. The journal
    marked the record sent before the request went out, so the next start takes it in as
    uncertain and posts it again with the repeat note, never twice without it (rule 3)."""
    url = fake_discord.add_webhook(host="localhost")
    store = tmp_path / "store"
    env = script_env(fake_discord, url, store)
    path = tmp_path / "logger.py"
    path.write_text(PRELUDE + FIRST_THEN_IN_FLIGHT, encoding="utf-8")
    logger = subprocess.Popen([sys.executable, str(path)], env=env, cwd=tmp_path)
    try:
        assert wait_for(lambda: titles(fake_discord) == ["delivered first"])
        # The channel lookup (a GET) follows the first delivery: answered before Discord
        # holds requests, so that the one held is the record's POST, not the lookup.
        assert wait_for(lambda: any(r.method == "GET" for r in fake_discord.requests))
        fake_discord.set_hang(True)
        (tmp_path / "go").touch()
        assert wait_for(lambda: fake_discord.pending >= 1)
    finally:
        logger.kill()
        logger.wait(FAILSAFE)
    fake_discord.set_hang(False)  # Discord acts on the request after all
    assert wait_for(lambda: titles(fake_discord) == ["delivered first", "in flight"])
    again = run_script(NEXT_START, {**env, "TEST_WANT": "1"}, tmp_path, "again.py")
    assert again.returncode == 0, again.stderr
    assert again.stdout.split() == ["1"]
    assert titles(fake_discord, marked=False) == ["delivered first", "in flight"]
    assert titles(fake_discord, marked=True) == ["in flight"]
    assert kept_letters(store) == []
    assert _journal_files(store) == []


def test_a_process_killed_during_a_webhooks_first_request_holds_it_only_until_no_request_can_be_out(
    fake_discord: FakeDiscord, tmp_path: Path
) -> None:
    """The first request to a webhook goes alone (no answer has told the fleet its bucket);
    its process is SIGKILLed while Discord holds it. The dead request's slot holds the bucket
    only until no request can still be out (3 x the 1 s timeout + 1 s here), not a minute:
    the next start posts the record again, marked, within its 30 s wait (half the minute the
    slot used to hold, and far more than a loaded machine needs past the 4 s)."""
    url = fake_discord.add_webhook(host="localhost")
    store = tmp_path / "store"
    env = script_env(fake_discord, url, store)
    fake_discord.set_hang(True)
    path = tmp_path / "logger.py"
    path.write_text(
        PRELUDE
        + "import time\nlog.addHandler(make_handler())\nlog.error('first')\ntime.sleep(30)\n",
        encoding="utf-8",
    )
    logger = subprocess.Popen([sys.executable, str(path)], env=env, cwd=tmp_path)
    try:
        assert wait_for(lambda: fake_discord.pending >= 1)
    finally:
        logger.kill()
        logger.wait(FAILSAFE)
    fake_discord.set_hang(False)
    again = run_script(
        NEXT_START, {**env, "TEST_WANT": "1", "TEST_WAIT": "30"}, tmp_path, "again.py"
    )
    assert again.returncode == 0, again.stderr
    assert titles(fake_discord, marked=True) == ["first"]
    assert kept_letters(store) == []


TWO_GROUPS_THEN_DIE = """
import signal, time
handler = make_handler()
log.addHandler(handler)

def logged(n, text):
    want = handler.stats()["emitted"] + n
    for i in range(n):
        log.error(text, i)
    deadline = time.monotonic() + 60
    while handler.stats()["emitted"] < want and time.monotonic() < deadline:
        time.sleep(0.01)

logged(3, "first group %d")
logged(2, "second group %d")
time.sleep(0.1)
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_a_journal_cut_short_as_a_power_loss_leaves_it_loses_only_its_tail(
    fake_discord: FakeDiscord, tmp_path: Path
) -> None:
    """What a power loss leaves, simulated: a process journals two groups during an outage
    and dies; its journal is then cut inside the frame of the second group, as the page cache
    losing the unsynced tail leaves it. The next start takes the first group in and delivers
    it once, counts the torn frame, and never posts a record of the cut group."""
    url = fake_discord.add_webhook(host="localhost")
    store = tmp_path / "store"
    env = script_env(fake_discord, url, store)
    fake_discord.fail_next(10_000, 503)
    done = run_script(TWO_GROUPS_THEN_DIE, env, tmp_path)
    assert done.returncode == -signal.SIGKILL, done.stderr
    (segment,) = (store / "journal").iterdir()
    data = segment.read_bytes()
    cut = data.index(b"second group 0")  # inside the second group's frame
    segment.write_bytes(data[:cut])
    fake_discord.reset()
    body = NEXT_START.replace(
        'print(handler.stats()["journal_recovered"])',
        'print(handler.stats()["journal_recovered"], handler.stats()["journal_torn"])',
    )
    again = run_script(body, {**env, "TEST_WANT": "3"}, tmp_path, "again.py")
    assert again.returncode == 0, again.stderr
    assert again.stdout.split() == ["3", "1"]
    assert sorted(titles(fake_discord)) == [f"first group {i}" for i in range(3)]
    assert kept_letters(store) == []
