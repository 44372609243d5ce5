"""Holders in containers (issue 29, findings 1, 4 and 6): one holder identity and one liveness
rule, true across pid namespaces and reused pids (docs/architecture.md, "Holders: who is
alive"), and fencing for a holder paused past its lease.

Real processes, each in a pid namespace of its own (``unshare --pid --fork --mount-proc``
stands in for a container: its app is pid 1), against FakeDiscord through ``localhost``; the
store directory is shared, as a volume is.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from letterkit import destination_of
from processkit import LOG_THEN_DIE, SCRIPT_TIMEOUT, script_env, titles, write_script
from waiting import wait_for

from discord_logging import Notifier
from discord_logging.deadletters import DeadLetter, DeadLetterReason
from discord_logging.delivery.replay import replay
from discord_logging.notification import Notification
from discord_logging.store import Store
from discord_logging.store._holders import Identity, Liveness
from discord_logging.testing import FakeDiscord

pytestmark = pytest.mark.slow  # real processes in their own pid namespaces


@functools.cache
def _unshare_refused() -> str | None:
    """Why a pid namespace cannot be made here, or None when it can."""
    try:
        done = subprocess.run(
            ["unshare", "--pid", "--fork", "--mount-proc", sys.executable, "-c", "import os;"
             "print(os.getpid())"],
            capture_output=True, text=True, timeout=30, check=False,
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"unshare cannot run here ({exc})"
    if done.returncode != 0 or done.stdout.split() != ["1"]:
        return f"unshare --pid is refused here (needs root or user namespaces): {done.stderr}"
    return None


def in_container(*command: str) -> list[str]:
    """``command`` in a pid namespace of its own (skipped where unshare is refused)."""
    reason = _unshare_refused()
    if reason is not None:
        pytest.skip(reason)
    return ["unshare", "--pid", "--fork", "--mount-proc", "--kill-child", *command]


def start(body: str, env: dict[str, str], tmp: Path, name: str, *, shell: bool = False) -> Any:
    """``PRELUDE + body`` in a container of its own: as its pid 1, or (``shell``) as pid 2
    under a shell that stays pid 1, as an entrypoint script does."""
    path = str(write_script(body, tmp, name))
    command = [sys.executable, path]
    if shell:
        command = ["sh", "-c", f'"{sys.executable}" "{path}"; true']
    pipe = subprocess.PIPE
    return subprocess.Popen(
        in_container(*command), env=env, cwd=tmp, stdin=pipe, stdout=pipe, stderr=pipe, text=True
    )


def journal_files(store: Path) -> list[str]:
    folder = store / "journal"
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


# Logs 5 errors with Discord holding their first request unanswered (a 30 s timeout: the
# rest wait queued, journaled), says so with its pid, and waits for a line on stdin before
# flushing and ending normally.
WRITER = LOG_THEN_DIE.format(
    options="timeout=30.0",
    counter="emitted",
    pause=0.3,
    end='print("pid", os.getpid(), flush=True)\n'
    "sys.stdin.readline()\n"
    "print(handler.flush(20), flush=True)\n"
    "sys.exit(0)",
)
# A second container's app: it starts beside the first (its worker looks for dead journals at
# once), says when that look is done, and waits.
BESIDE = """
import time
handler = make_handler(timeout=30.0)
log.addHandler(handler)
deadline = time.monotonic() + 10
worker = handler._worker  # private: the test must know the first look ran
while time.monotonic() < deadline:
    journal = worker.journal if worker is not None else None
    task = journal._look_task if journal is not None else None
    if task is not None and task.done():
        break
    time.sleep(0.02)
    worker = handler._worker
print("pid", os.getpid(), "looked", flush=True)
sys.stdin.readline()
print(handler.flush(20), handler.stats()["journal_recovered"], flush=True)
"""


def test_two_live_containers_on_one_store_never_take_each_others_journal(
    fake_discord: FakeDiscord, tmp_path: Path
) -> None:
    """Two containers of one pod share the store volume, both pid 1 of their own namespace:
    the first logs 5 errors (held unanswered, so they wait in its journal); the second starts
    and looks for dead journals. The first's is alive (its lock is held), so it is not taken:
    each record is posted once, by the first, none with the repeat note (before: the second
    took it, and 10 posts went out for 5 records)."""
    url = fake_discord.add_webhook(host="localhost")
    store = tmp_path / "store"
    env = script_env(fake_discord, url, store)
    fake_discord.set_hang(True)
    first = start(WRITER, env, tmp_path, "first.py")
    second = None
    try:
        assert first.stdout is not None
        assert first.stdout.readline().split() == ["pid", "1"]
        before = journal_files(store)
        assert before
        second = start(BESIDE, env, tmp_path, "second.py")
        assert second.stdout is not None
        assert second.stdout.readline().split() == ["pid", "1", "looked"]
        assert journal_files(store) == before  # neither taken nor renamed
        fake_discord.set_hang(False)
        out_first, err_first = first.communicate("go\n", timeout=SCRIPT_TIMEOUT)
        out_second, err_second = second.communicate("go\n", timeout=SCRIPT_TIMEOUT)
    finally:
        for process in (first, second):
            if process is not None and process.poll() is None:
                process.kill()
                process.wait(10)
    assert first.returncode == 0, err_first
    assert second.returncode == 0, err_second
    assert out_first.split() == ["True"]
    assert out_second.split() == ["True", "0"]
    assert sorted(titles(fake_discord)) == [f"record {i} before the end" for i in range(5)]
    assert titles(fake_discord, marked=True) == []


# Logs 5 errors during an outage, waits until its worker journaled them, and ends without
# its exit (os._exit: pid 1 of a namespace cannot SIGKILL itself); its journal stays.
DIES = LOG_THEN_DIE.format(
    options="",
    counter="emitted",
    pause=0.3,
    end='print("pid", os.getpid(), flush=True)\nos._exit(1)',
)
RESTARTED = """
import time
handler = make_handler()
handler.flush(5)  # waits for the worker's first look
deadline = time.monotonic() + 10
while handler.stats()["redelivered"] < 5 and time.monotonic() < deadline:
    time.sleep(0.02)
print("pid", os.getpid(), handler.stats()["journal_recovered"], flush=True)
"""


def test_a_restarted_container_recovers_the_journal_whose_writers_pid_another_process_has(
    fake_discord: FakeDiscord, tmp_path: Path
) -> None:
    """A container's app (pid 1) is killed with 5 records journaled during an outage; the
    container restarts on the same volume and host name, now with an entrypoint shell as its
    pid 1 (alive for as long as the container) and the app as pid 2. The dead writer's pid
    belongs to a live process, yet its lock is gone: the journal is taken in and each record
    delivered once (before: pid 1 answered ``kill(1, 0)``, and the journal was never taken)."""
    url = fake_discord.add_webhook(host="localhost")
    store = tmp_path / "store"
    env = script_env(fake_discord, url, store)
    fake_discord.fail_next(10_000, 503)
    dead = start(DIES, env, tmp_path, "dies.py")
    out, err = dead.communicate(timeout=SCRIPT_TIMEOUT)
    assert out.split() == ["pid", "1"], err
    assert dead.returncode == 1
    (segment,) = journal_files(store)
    assert Identity.parse(segment.rsplit(".", 2)[0]) is not None
    fake_discord.reset()
    again = start(RESTARTED, env, tmp_path, "again.py", shell=True)
    out, err = again.communicate(timeout=SCRIPT_TIMEOUT)
    assert again.returncode == 0, err
    assert out.split() == ["pid", "2", "5"]
    assert sorted(titles(fake_discord)) == [f"record {i} before the end" for i in range(5)]
    assert titles(fake_discord, marked=True) == []
    assert journal_files(store) == []


HOLDS = """
from pathlib import Path
from discord_logging.store._holders import Holder
holder = Holder(Path(os.environ["DISCORD_STORE_PATH"]))
print(os.getpid(), holder.identity, flush=True)
sys.stdin.readline()
"""


def test_a_holder_in_another_pid_namespace_is_alive_until_its_process_ends(
    tmp_path: Path,
) -> None:
    """A holder that is pid 1 of its own namespace is alive to a process outside it (its lock
    is held: the pid means nothing here) and gone the moment its process is killed, whatever
    pid it had: the kernel released the lock."""
    store = tmp_path / "store"
    env = {**os.environ, "DISCORD_STORE_PATH": str(store)}
    holder = start(HOLDS, env, tmp_path, "holds.py")
    try:
        assert holder.stdout is not None
        pid, identity = holder.stdout.readline().split()
        assert pid == "1"
        parsed = Identity.parse(identity)
        assert parsed is not None
        assert Liveness(store).alive(parsed) is True
    finally:
        holder.kill()  # the unshare process: --kill-child ends its child, pid 1 inside
        holder.communicate(timeout=10)
    assert wait_for(lambda: Liveness(store).alive(parsed) is False)


# A holder that redelivers 3 kept letters under a short lease (1 s, fenced after 0.5 s); its
# first post is rate limited (429), so they wait queued when the test pauses it.
PAUSED = """
import time
import discord_logging.delivery.redelivery as redelivery
import discord_logging.store.durable_letters as durable_letters
durable_letters.CLAIM_LEASE = 1.0
redelivery.FENCE_AGE = 0.5
redelivery.RENEW_INTERVAL = 1000.0  # no renewal while paused: the lease lapses
handler = make_handler()
deadline = time.monotonic() + 20
while handler.stats()["redelivered"] < 3 and time.monotonic() < deadline:
    if sys.stdin in __import__("select").select([sys.stdin], [], [], 0.05)[0]:
        break
handler.flush(5)  # what it still holds would go out now
print(handler.stats()["redelivered"], flush=True)
"""


def kept(store: Path, url: str, count: int) -> list[str]:
    """Keep ``count`` retryable letters for ``url``'s webhook in ``store``; their titles."""
    opened = Store(store)
    letters = [
        DeadLetter(
            Notification(
                alert_type="general",
                title=f"kept {i}",
                message=f"kept {i}",
                created=time.time(),
                host="testhost",
            ),
            webhook="general",
            reason=DeadLetterReason.RETRIES_EXHAUSTED,
            destination=destination_of(url),
        )
        for i in range(count)
    ]
    for item in letters:
        opened.dead_letters.add(item)
    opened.close()
    return [f"kept {i}" for i in range(count)]


def test_a_holder_paused_past_its_lease_drops_what_another_took_over_instead_of_posting_it(
    fake_discord: FakeDiscord, tmp_path: Path
) -> None:
    """A process redelivering 3 kept letters is SIGSTOPped (``docker pause``) while they wait
    queued behind a 429; its 1 s lease lapses, and the operator's flush takes them over and
    posts them with the repeat note. SIGCONT: before its next post the lane confirms its
    claims, finds them lost and drops the letters: each is posted once, marked (before: the
    resumed process posted all 3 again, without the note)."""
    url = fake_discord.add_webhook(host="localhost")
    store = tmp_path / "store"
    expected = kept(store, url, 3)
    env = script_env(fake_discord, url, store)
    fake_discord.force_429(1, retry_after=1.5)
    path = write_script(PAUSED, tmp_path, "paused.py")
    pipe = subprocess.PIPE
    paused = subprocess.Popen(
        [sys.executable, str(path)], env=env, cwd=tmp_path, stdin=pipe, stdout=pipe, text=True
    )
    try:
        assert wait_for(lambda: len(fake_discord.requests) >= 1)  # the 429
        os.kill(paused.pid, signal.SIGSTOP)
        operator = Store(store)
        cli = Notifier(
            webhooks={"general": url},
            allowed_hosts=fake_discord.named_host,
            dead_letters=operator.dead_letters,
            listeners=[operator.record],
            store_dir=store,
        )

        async def flush_when_lapsed() -> None:
            durable = operator.durable
            assert durable is not None
            deadline = time.monotonic() + 20
            # The paused holder's claims lapse after its 1 s lease: the letters come free.
            while time.monotonic() < deadline:
                report = await replay(operator, cli)
                if report.delivered == 3:
                    break
                await asyncio.sleep(0.1)
            await cli.aclose(5)

        asyncio.run(flush_when_lapsed())
        operator.close()
        assert sorted(titles(fake_discord, marked=True)) == expected
        os.kill(paused.pid, signal.SIGCONT)
        out, _ = paused.communicate("stop\n", timeout=SCRIPT_TIMEOUT)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(paused.pid, signal.SIGCONT)
        if paused.poll() is None:
            paused.kill()
            paused.wait(10)
    assert out.split() == ["0"]
    assert sorted(titles(fake_discord)) == expected  # each once, all marked
    assert sorted(titles(fake_discord, marked=True)) == expected


FIRST_REQUEST_THEN_KILLED = """
import time
log.addHandler(make_handler(timeout=20.0))
log.error("first")
time.sleep(60)  # killed while Discord holds the request
"""
NEXT_START_PATIENT = """
import time
handler = make_handler(timeout=20.0)
deadline = time.monotonic() + 10
while handler.stats()["redelivered"] < 1 and time.monotonic() < deadline:
    time.sleep(0.02)
print(handler.stats()["redelivered"], flush=True)
"""


def test_a_killed_holders_slot_stops_holding_its_webhook_at_once(
    fake_discord: FakeDiscord, tmp_path: Path
) -> None:
    """A container's app (pid 1, a 20 s request timeout) is killed during its webhook's
    first request, which goes alone (no answer has told the fleet its bucket). Its slot
    names a holder whose lock the kernel released: the next start, with the same timeout,
    posts the record again (marked) at once rather than after the dead slot's bound of
    3 x 20 s + 1 s (before: it waited that minute)."""
    url = fake_discord.add_webhook(host="localhost")
    store = tmp_path / "store"
    env = script_env(fake_discord, url, store)
    fake_discord.set_hang(True)
    first = start(FIRST_REQUEST_THEN_KILLED, env, tmp_path, "first.py")
    try:
        assert wait_for(lambda: fake_discord.pending >= 1)
    finally:
        first.kill()  # the unshare process: --kill-child SIGKILLs the app, pid 1 inside
        first.communicate(timeout=10)
    fake_discord.set_hang(False)  # Discord acts on the request after all
    again = start(NEXT_START_PATIENT, env, tmp_path, "again.py")
    out, err = again.communicate(timeout=SCRIPT_TIMEOUT)
    assert again.returncode == 0, err
    assert out.split() == ["1"]
    assert titles(fake_discord, marked=True) == ["first"]
