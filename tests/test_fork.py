"""The fork hook does no I/O in the child: forks during heavy store writes never hang, and a
``Popen(preexec_fn=...)`` child opens nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from processkit import run_script, script_env

from discord_logging.testing import FakeDiscord

pytestmark = [
    pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="needs os.fork"),
    pytest.mark.slow,  # real processes
]

FORKS = 200

# Waits for a forked child (its exit code must be 0); one still running after 60 s counts as
# hung and is killed. Part of both scripts below.
REAP = """
def reaped_hung(pid):
    deadline = time.monotonic() + 60
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            assert os.waitstatus_to_exitcode(status) == 0, status
            return 0
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            return 1
        time.sleep(0.001)
"""

# A writer thread logs records that Discord refuses (400: each one a dead letter written to
# the store) while the main thread forks; each child ends at once, as preexec children and
# fork-exec helpers do. A child still running after its bound counts as hung and is killed.
FORK_DURING_WRITES = (
    """
import json, os, signal, threading, time
"""
    + REAP
    + f"""
from discord_logging.store import Store

opened = []
original = Store.__init__
def tracking(self, *args, **kwargs):
    opened.append(os.getpid())
    original(self, *args, **kwargs)
Store.__init__ = tracking

handler = make_handler()
log.addHandler(handler)
stop = threading.Event()

def writer():
    i = 0
    while not stop.is_set():
        log.error("write %s", i)
        i += 1
        if i % 10 == 0:
            time.sleep(0.005)  # about 2,000 records a second: the loop keeps writing

thread = threading.Thread(target=writer)
thread.start()
hung = 0
for _ in range({FORKS}):
    pid = os.fork()
    if pid == 0:
        os._exit(0 if not opened or opened == [os.getppid()] else 3)
    hung += reaped_hung(pid)

def preexec():
    if handler._store is not None or opened != [os.getppid()]:
        raise RuntimeError("the fork hook opened something")

import subprocess
subprocess.run([sys.executable, "-c", "pass"], preexec_fn=preexec, check=True, timeout=10)
stop.set()
thread.join()
written = handler.stats()["dead_lettered"]
print(json.dumps({{"hung": hung, "stores": len(opened), "written": written > 0}}))
"""
)


def test_forks_during_store_writes_never_hang(fake_discord: FakeDiscord, tmp_path: Path) -> None:
    """200 forks while the parent writes dead letters: every child ends at once, none builds a
    store, and a preexec_fn child sees no store either. The preexec check reads
    DiscordHandler._store: the public ``store`` property builds the store on first use, the
    very thing the check must not do."""
    url = fake_discord.add_webhook(host="localhost")
    fake_discord.set_status_override(url.split("/")[-2], 400)
    done = run_script(
        FORK_DURING_WRITES, script_env(fake_discord, url, tmp_path / "store", 0.5), tmp_path
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report == {"hung": 0, "stores": 1, "written": True}, done.stderr


# The parent's store thread reads and claims kept letters in a loop (what lanes do on it)
# and its writer writes, while the main thread forks children that open the same store and
# read it: a child forked while a parent thread was inside SQLite would inherit that
# thread's process-wide SQLite mutexes locked and hang on its first store call.
FORK_DURING_READS = (
    """
import json, os, signal, threading, time
"""
    + REAP
    + f"""
from discord_logging.store import Store

handler = make_handler()
log.addHandler(handler)
log.error("start the worker")
deadline = time.monotonic() + 60
worker = handler.worker
while "general" not in worker.notifier.lanes:
    assert time.monotonic() < deadline, "the worker did not start"
    time.sleep(0.01)
store_io = worker.notifier.lanes["general"].shared.store_io
destination = worker.notifier.lanes["general"].url.identity
sink = handler.store.dead_letters
stop = threading.Event()
reads = 0

def reader():
    global reads
    while not stop.is_set():
        store_io.submit(sink.retryable, destination, 20).result()
        reads += 1
        time.sleep(0.002)  # a lane reads in rounds; back to back, other processes starve

def writer():
    i = 0
    while not stop.is_set():
        log.error("write %s", i)
        i += 1
        time.sleep(0.004)  # a few hundred letters a second: other processes get their turn

threads = [threading.Thread(target=reader), threading.Thread(target=writer)]
for thread in threads:
    thread.start()
hung = 0
for _ in range({FORKS // 2}):
    pid = os.fork()
    if pid == 0:
        child = Store(os.environ["DISCORD_STORE_PATH"])
        child.dead_letters.retryable(destination, 5)
        len(child.dead_letters)
        os._exit(0)
    hung += reaped_hung(pid)
stop.set()
for thread in threads:
    thread.join()
print(json.dumps({{"hung": hung, "read": reads > 0}}))
"""
)


def test_forks_during_store_reads_never_hang(fake_discord: FakeDiscord, tmp_path: Path) -> None:
    """100 forks while the parent's store thread reads and claims letters and its writer
    writes: every child opens the store, reads it and ends; none hangs."""
    url = fake_discord.add_webhook(host="localhost")
    fake_discord.set_status_override(url.split("/")[-2], 503)
    done = run_script(
        FORK_DURING_READS, script_env(fake_discord, url, tmp_path / "store", 0.5), tmp_path
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report == {"hung": 0, "read": True}, done.stderr


# The parent's worker starts and imports the store's coordination backend (its one lazy
# import at start) slowly, holding that module's import lock; the main thread forks while
# it does. The child's own worker imports the same module: a child forked mid-import would
# find its lock held by a thread it does not have, and never deliver.
FORK_DURING_BACKEND_IMPORT = (
    """
import importlib.abc, json, os, signal, threading, time
"""
    + REAP
    + """
BACKEND = "discord_logging.coordination.host"
importing = threading.Event()

class SlowBackend(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name == BACKEND and not importing.is_set():
            importing.set()
            time.sleep(0.5)  # the importing thread holds the module's lock meanwhile
        return None

assert BACKEND not in sys.modules
sys.meta_path.insert(0, SlowBackend())
handler = make_handler()
log.addHandler(handler)
log.error("the parent's record")  # starts the worker, which imports the backend
assert importing.wait(60), "the worker never imported the coordination backend"
pid = os.fork()
if pid == 0:
    log.error("the child's record")
    os._exit(0 if handler.flush(30) else 3)
hung = reaped_hung(pid)
print(json.dumps({"hung": hung, "parent": handler.flush(30)}))
"""
)


def test_a_fork_during_the_workers_backend_import_leaves_the_child_able_to_deliver(
    fake_discord: FakeDiscord, tmp_path: Path
) -> None:
    """A fork while the parent's worker imports the coordination backend (the rule:
    docs/architecture.md, "Fork": the fork waits for the worker's whole start): the child's
    record is delivered, not stuck behind an import lock no thread of the child holds.
    fleet.py's fork-1-redis row found it (8 runs of 9 at 3da381d); this pins it on the
    store's backend, with the import slowed by a finder so the fork lands inside it."""
    url = fake_discord.add_webhook(host="localhost")
    done = run_script(
        FORK_DURING_BACKEND_IMPORT, script_env(fake_discord, url, tmp_path / "store", 5), tmp_path
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report == {"hung": 0, "parent": True}, done.stderr
    titles = [embed.get("title", "") for m in fake_discord.messages for embed in m.embeds]
    assert "the child's record" in titles, titles
