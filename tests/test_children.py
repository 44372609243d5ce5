"""Children deliver: multiprocessing children (fork, forkserver, spawn) that log and end
deliver everything they logged, once, though fork and forkserver children end with os._exit."""

from __future__ import annotations

import multiprocessing
import re
from pathlib import Path

import pytest
from processkit import HEALTHY_CLOSE, run_script, script_env, titles

from discord_logging.testing import FakeDiscord

pytestmark = pytest.mark.slow  # real processes

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
        p.join(60)
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
    env = script_env(fake_discord, url, tmp_path / "store", HEALTHY_CLOSE)  # delivered, not kept
    done = run_script(SCRIPT.replace("{method}", method), env, tmp_path)
    assert done.returncode == 0, done.stderr
    expected = sorted(f"child {n} record {i}" for n in range(CHILDREN) for i in range(RECORDS))
    assert sorted(titles(fake_discord)) == expected, done.stderr
    assert "Traceback" not in done.stderr


OVERFLOW = """
import multiprocessing

def child():
    handler = DiscordHandler(
        webhooks={"general": os.environ["TEST_WEBHOOK"]},
        allowed_hosts=os.environ["TEST_HOSTS"],
        aggregate_window=0,
        queue_size=100,
        engine_options={"channel_window": 1.0, "rand": lambda: 0.0},
    )
    log.addHandler(handler)
    for i in range(300):
        log.error("burst record %s", i)

if __name__ == "__main__":
    p = multiprocessing.get_context("{method}").Process(target=child)
    p.start()
    p.join(60)
    assert p.exitcode == 0, p.exitcode
"""


@pytest.mark.parametrize("method", ["fork", "forkserver", "spawn"])
def test_a_child_takes_back_its_overflow_before_it_ends(tmp_path: Path, method: str) -> None:
    """A child logs 300 records with a queue of 100 and ends: it flushes before it closes
    (fork and forkserver children end with os._exit: their finalizer does it), so what
    overflowed the queue is taken back from the store and delivered while Discord is healthy,
    nothing left for the next run."""
    if method not in multiprocessing.get_all_start_methods():
        pytest.skip(f"start method {method} is not available here")
    from discord_logging.store import Store

    with FakeDiscord(webhook_window=0.3, channel_window=1.0) as fake:
        url = fake.add_webhook(host="localhost")
        env = script_env(fake, url, tmp_path / "store", close_timeout=20)
        done = run_script(OVERFLOW.replace("{method}", method), env, tmp_path)
        assert done.returncode == 0, done.stderr
        texts = [str(m.payload) for m in fake.messages] + [
            data.decode() for m in fake.messages for _, data in m.files.values()
        ]
        delivered = {int(n) for text in texts for n in re.findall(r"burst record (\d+)", text)}
    store = Store(tmp_path / "store")
    left = store.dead_letters.letters()
    store.close()
    assert left == [], done.stderr
    assert len(delivered) == 300
