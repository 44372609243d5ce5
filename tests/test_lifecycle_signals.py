"""SIGTERM in processes that do not end as expected (issue 29, points 2 and 3): pid 1, which
the kernel does not end on SIGTERM at its default disposition, and a process whose main thread
returned while a non-daemon thread works. Real subprocesses against FakeDiscord; pid 1 in its
own pid namespace (``unshare --pid --fork --mount-proc``, as a container's process is)."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from processkit import (
    HEALTHY_CLOSE,
    SCRIPT_TIMEOUT,
    run_script,
    script_env,
    start_script,
    titles,
    write_script,
)

from discord_logging.testing import FakeDiscord

# pid 1 signals itself: the kernel ignores SIGTERM at its default disposition there, so the
# script goes on and logs more; each line printed is what the handler says then.
AS_PID_1 = """
import signal, time
assert os.getpid() == 1, os.getpid()
handler = make_handler()
log.addHandler(handler)
log.error("before the signal")
os.kill(1, signal.SIGTERM)  # the drain runs before kill returns (os.kill checks signals)
print("alive after the first SIGTERM", flush=True)
log.error("after the signal")
print("flushed", handler.flush(10), flush=True)
os.kill(1, signal.SIGTERM)
log.error("after the second signal")
print("flushed", handler.flush(10), flush=True)
print("dropped", sorted(handler.stats()["dropped"]), flush=True)
"""

# The main thread returns; a non-daemon thread logs, says so, then works on (20 s).
pytestmark = pytest.mark.slow  # real processes (pid namespaces, signals)

MAIN_RETURNS = """
import threading, time
handler = make_handler()
log.addHandler(handler)
log.error("from the main thread")

def work():
    while threading.main_thread().is_alive():
        time.sleep(0.01)
    log.error("from the thread, after main returned")
    print("main returned", flush=True)
    time.sleep(20)

threading.Thread(target=work).start()
"""


def test_pid_1_survives_sigterm_and_its_handler_keeps_delivering(
    fake_discord: FakeDiscord, tmp_path: Path
) -> None:
    """Python as pid 1 (a container without an init) gets SIGTERM twice: each drain delivers,
    the process goes on (the kernel ignores the re-raised SIGTERM), and what it logs after
    each is delivered too, none dropped as ``closed``."""
    unshare = shutil.which("unshare")
    if unshare is None:
        pytest.skip("needs util-linux's unshare to run a process as pid 1 of a pid namespace")
    url = fake_discord.add_webhook(host="localhost")
    path = write_script(AS_PID_1, tmp_path, "app.py")
    command = [unshare, "--pid", "--fork", "--mount-proc", sys.executable, str(path)]
    done = subprocess.run(
        command,
        env=script_env(fake_discord, url, tmp_path / "store"),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=SCRIPT_TIMEOUT,
        check=False,
    )
    if done.returncode != 0 and done.stderr.startswith("unshare:"):
        pytest.skip(f"unshare is refused here (needs root or user namespaces): {done.stderr}")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "alive after the first SIGTERM",
        "flushed True",
        "flushed True",
        "dropped []",
    ], done.stderr
    assert titles(fake_discord) == [
        "before the signal",
        "after the signal",
        "after the second signal",
    ]


def test_sigterm_after_main_returned_ends_the_process_by_sigterm(
    fake_discord: FakeDiscord, tmp_path: Path
) -> None:
    """The main thread returned (the exit drain ran) and a non-daemon thread works on: a
    SIGTERM drains what the thread logged and ends the process with -15 at once, as without
    the library, instead of waiting for the thread."""
    url = fake_discord.add_webhook(host="localhost")
    env = script_env(fake_discord, url, tmp_path / "store", HEALTHY_CLOSE)
    process = start_script(MAIN_RETURNS, env, tmp_path)
    try:
        assert process.stdout is not None
        assert process.stdout.readline() == b"main returned\n"
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=15)  # the thread would work 20 s
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == -signal.SIGTERM, err.decode()
    assert sorted(titles(fake_discord)) == [
        "from the main thread",
        "from the thread, after main returned",
    ], err.decode()


# A Pool worker's main thread blocks on its task lock while terminate() holds it; here a
# multiprocessing child's main thread blocks on a lock nobody will release. The SIGTERM is
# caught by another thread (its C handler runs there and notes it): the main thread's wait is
# not interrupted and never looks, the state a SIGTERM that came just before the wait began
# leaves. The parent prints the child's exit code.
MISSED_WHILE_BLOCKED = """
import multiprocessing, signal, threading, time

def blocked():
    handler = make_handler()
    log.addHandler(handler)
    log.error("before the wait")
    lock = multiprocessing.Lock()
    lock.acquire()
    waiting = threading.Event()

    def catch_it_elsewhere():
        waiting.wait()
        time.sleep(0.05)  # the main thread is in sem_wait by now (if not: it looks, drains)
        signal.pthread_kill(threading.get_ident(), signal.SIGTERM)

    threading.Thread(target=catch_it_elsewhere, daemon=True).start()
    waiting.set()
    lock.acquire()  # for good, unless the SIGTERM reaches the main thread
    print("the lock was taken", flush=True)

if __name__ == "__main__":
    child = multiprocessing.get_context("spawn").Process(target=blocked)
    child.start()
    child.join()
    print("child ended", child.exitcode, flush=True)
"""


def test_a_sigterm_the_blocked_main_thread_missed_still_drains_and_ends_it(
    fake_discord: FakeDiscord, tmp_path: Path
) -> None:
    """SIGTERM noted while a multiprocessing child's main thread waits on a lock that only a
    signal ends: the watcher sends it again to the main thread, which drains (the record
    arrives) and ends by SIGTERM. Without it the child waited for good, and its parent's join
    with it (a Pool's terminate() hung so)."""
    url = fake_discord.add_webhook(host="localhost")
    env = script_env(fake_discord, url, tmp_path / "store", HEALTHY_CLOSE)
    done = run_script(MISSED_WHILE_BLOCKED, env, tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"child ended {-signal.SIGTERM}\n", done.stderr
    assert titles(fake_discord) == ["before the wait"], done.stderr


# Where the watchers are: none in the main process (an application there may answer SIGTERM
# itself and put the drain back), none in a bare os.fork() child, which has given the wakeup
# fd back; one in a multiprocessing child, from its _bootstrap.
WATCHERS_AFTER_FORKS = """
import multiprocessing, signal
from discord_logging import signal_watch

def report(where):
    watch = signal_watch._WATCH
    mine = watch is not None and watch.pid == os.getpid()
    fd = signal.set_wakeup_fd(-1)
    signal.set_wakeup_fd(fd)
    print(where, "watching" if mine else "not watching", "fd" if fd != -1 else "no fd", flush=True)

handler = make_handler()
log.addHandler(handler)
report("parent")
pid = os.fork()
if pid == 0:
    report("bare child")
    os._exit(0)
os.waitpid(pid, 0)
child = multiprocessing.get_context("fork").Process(target=report, args=("pool child",))
child.start()
child.join()
report("parent")
"""


def test_each_process_watches_its_own_signals_after_forks(
    fake_discord: FakeDiscord, tmp_path: Path
) -> None:
    """Only the multiprocessing child (a Pool worker, which can miss its SIGTERM for good)
    watches, with a wakeup fd of its own; the main process and a bare fork's child do not."""
    url = fake_discord.add_webhook(host="localhost")
    env = script_env(fake_discord, url, tmp_path / "store", HEALTHY_CLOSE)
    done = run_script(WATCHERS_AFTER_FORKS, env, tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "parent not watching no fd",
        "bare child not watching no fd",
        "pool child watching fd",
        "parent not watching no fd",
    ], done.stderr
