"""Children deliver: multiprocessing children (fork, forkserver, spawn) that log and end
deliver everything they logged, once, though fork and forkserver children end with os._exit."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest
from processkit import run_script, script_env, titles

from discord_logging.testing import FakeDiscord

CHILDREN, RECORDS = 3, 4

# The handler is created in each child (at import of main for spawn and forkserver, where
# the script is re-imported; inherited from the parent for fork).
SCRIPT = f"""
import multiprocessing

handler = make_handler()
log.addHandler(handler)

def child(n):
    for i in range({RECORDS}):
        log.error("child %s record %s", n, i)

if __name__ == "__main__":
    ctx = multiprocessing.get_context(sys.argv[1] if len(sys.argv) > 1 else "{{method}}")
    procs = [ctx.Process(target=child, args=(n,)) for n in range({CHILDREN})]
    for p in procs:
        p.start()
    for p in procs:
        p.join(20)
        assert p.exitcode == 0, p.exitcode
"""


@pytest.mark.parametrize("method", ["fork", "forkserver", "spawn"])
def test_children_deliver_what_they_logged(
    method: str, fake_discord: FakeDiscord, tmp_path: Path
) -> None:
    """Every record of every child arrives exactly once, for each start method."""
    if method not in multiprocessing.get_all_start_methods():
        pytest.skip(f"start method {method} is not available here")
    url = fake_discord.add_webhook(host="localhost")
    env = script_env(fake_discord, url, tmp_path / "store")
    done = run_script(SCRIPT.replace("{method}", method), env, tmp_path)
    assert done.returncode == 0, done.stderr
    expected = sorted(f"child {n} record {i}" for n in range(CHILDREN) for i in range(RECORDS))
    assert sorted(titles(fake_discord)) == expected, done.stderr
    assert "Traceback" not in done.stderr
