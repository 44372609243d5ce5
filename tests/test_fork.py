"""The fork hook does no I/O in the child: forks during heavy store writes never hang, and a
``Popen(preexec_fn=...)`` child opens nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from processkit import run_script, script_env

from discord_logging.testing import FakeDiscord

pytestmark = pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="needs os.fork")

FORKS = 200

# A writer thread logs records that Discord refuses (400: each one a dead letter written to
# the store) while the main thread forks; each child ends at once, as preexec children and
# fork-exec helpers do. A child still running after its bound counts as hung and is killed.
FORK_DURING_WRITES = f"""
import json, os, signal, threading, time
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
    deadline = time.monotonic() + 5.0
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            assert os.waitstatus_to_exitcode(status) == 0, status
            break
        if time.monotonic() > deadline:
            hung += 1
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            break
        time.sleep(0.001)

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


def test_forks_during_store_writes_never_hang(fake_discord: FakeDiscord, tmp_path: Path) -> None:
    """200 forks while the parent writes dead letters: every child ends at once, none builds a
    store, and a preexec_fn child sees no store either."""
    url = fake_discord.add_webhook(host="localhost")
    fake_discord.set_status_override(url.split("/")[-2], 400)
    done = run_script(
        FORK_DURING_WRITES, script_env(fake_discord, url, tmp_path / "store", 0.5), tmp_path
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report == {"hung": 0, "stores": 1, "written": True}, done.stderr
