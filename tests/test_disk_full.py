"""A full disk keeps what fits (docs/architecture.md, "A full disk"): when the store's volume
fills during an outage, what was written stays readable and is delivered by the next start,
the rest is counted and said once, the exit line gives the exact number LOST, and the store
writes again by itself once space returns."""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from processkit import kept_letters, library_lines, run_script, script_env, titles

from discord_logging.delivery.journaling import letters_of
from discord_logging.store import Store
from discord_logging.testing import FakeDiscord

pytestmark = pytest.mark.slow  # real processes on a real (small) volume

RECORDS = 3_000
BODY = 1_500  # bytes of message per record

FILL_SCRIPT = f"""
import json, time
handler = make_handler(close_timeout=1.0)
handler.wait_started(60)
log.addHandler(handler)
for i in range({RECORDS}):
    log.error("order %d failed: %s", i, "x" * {BODY})
deadline = time.monotonic() + 60
while handler.stats()["queue_depth"] and time.monotonic() < deadline:
    time.sleep(0.05)
handler.close()
print(json.dumps(handler.stats()))
"""


def still_kept(store: Path) -> set[str]:
    """Ids of the letters ``store`` keeps: in its letters, or still in a journal segment
    (taken into the letters once they fit) and not recorded as delivered in its history."""
    opened = Store(store)
    try:
        ids = {letter.id for letter in opened.dead_letters.letters()}
        journaled = [
            letter
            for segment in (store / "journal").glob("*.jnl*")
            for letter in letters_of(segment.read_bytes())[0]
        ]
        history = opened.history
        assert history is not None
        delivered = history.delivered([letter.notification for letter in journaled])
    finally:
        opened.close()
    return ids | {letter.id for letter in journaled if letter.id not in delivered}


@pytest.fixture
def small_volume(tmp_path: Path) -> Iterator[Path]:
    """A 3 MB tmpfs (root only); unmounted after the test."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root (as in CI)")
    volume = tmp_path / "volume"
    volume.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(volume)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"mount refused a tmpfs: {mounted.stderr.strip()}")
    try:
        yield volume
    finally:
        subprocess.run(["umount", "-l", str(volume)], check=False)


NEXT_START = """
import json, time
handler = make_handler(rate_limit=10_000, close_timeout=1.0)
deadline = time.monotonic() + 60
while handler.stats()["redelivered"] < {enough} and time.monotonic() < deadline:
    time.sleep(0.05)
handler.close()
print(json.dumps(handler.stats()))
"""
EXIT_LINE = re.compile(
    r"(\d+) dead letters? LOST \(the store at .* could not take them; kept only in memory\); "
    r"(\d+) more kept in the store and (\d+) in its journal"
)


def test_a_full_volume_keeps_what_fits_and_the_next_start_delivers_it(
    fake_discord: FakeDiscord, tmp_path: Path, small_volume: Path
) -> None:
    """3,000 records of 1.5 KB while Discord answers 503 fill a 3 MB volume: the full volume
    is said once, the exit line's LOST, kept-in-the-store and kept-in-the-journal counts add up
    to the 3,000, and the next start (Discord healthy) delivers what was kept: what it
    delivered and what it still keeps add up to them, none posted twice unmarked."""
    url = fake_discord.add_webhook(host="localhost")
    fake_discord.fail_next(1_000_000, 503)
    store = small_volume / "store"
    first = run_script(FILL_SCRIPT, script_env(fake_discord, url, store), tmp_path)
    assert first.returncode == 0, first.stderr
    lines = library_lines(first.stderr)
    assert len([line for line in lines if "is full" in line]) == 1, first.stderr
    found = EXIT_LINE.search(first.stderr)
    assert found is not None, first.stderr
    lost, on_disk, journaled = (int(x) for x in found.groups())
    assert lost + on_disk + journaled == RECORDS
    assert on_disk + journaled >= 100, first.stderr  # the volume had room for many
    assert json.loads(first.stdout.splitlines()[-1])["dead_lettered"] == RECORDS

    fake_discord.reset()
    owed = on_disk + journaled
    env = script_env(fake_discord, url, store)
    # Delivering them all would take minutes at Discord's pace: the next start delivers some
    # and keeps the rest; together, every kept letter, once.
    body = NEXT_START.format(enough=min(owed, 20))
    second = run_script(body, env, tmp_path, name="next.py")
    assert second.returncode == 0, second.stderr
    redelivered = json.loads(second.stdout.splitlines()[-1])["redelivered"]
    assert redelivered >= min(owed, 20), second.stderr
    assert redelivered + len(still_kept(store)) == owed, second.stderr
    unmarked = titles(fake_discord, marked=False)
    assert len(unmarked) == len(set(unmarked))  # none posted twice unmarked
    assert "Traceback" not in first.stderr + second.stderr


RECOVER_SCRIPT = """
import json, os, time
handler = make_handler(close_timeout=1.0)
handler.wait_started(60)
log.addHandler(handler)
store = handler.store
deadline = time.monotonic() + 60
for i in range(40):
    log.error("order %d failed: %s", i, "x" * 1500)
while not store.degraded and time.monotonic() < deadline:
    time.sleep(0.05)
full = store.degraded
os.remove(os.environ["FILLER"])  # room returns
i = 40
while store.degraded and time.monotonic() < deadline:
    log.error("order %d failed: %s", i, "x" * 1500)  # letters arrive: the disk is tried
    i += 1
    time.sleep(0.1)
while handler.stats()["queue_depth"] and time.monotonic() < deadline:
    time.sleep(0.05)
back = not store.degraded
handler.close()
print(json.dumps({"full": full, "back": back, "logged": i, "stats": handler.stats()}))
"""


def test_room_returning_makes_the_store_write_again_without_a_restart(
    fake_discord: FakeDiscord, tmp_path: Path, small_volume: Path
) -> None:
    """A filler leaves the store less room than it keeps free: letters go to memory (said
    once); the filler is removed while the process runs, and the store writes again by
    itself: every letter ends in the store, none LOST."""
    url = fake_discord.add_webhook(host="localhost")
    fake_discord.fail_next(1_000_000, 503)
    filler = small_volume / "filler"
    filler.write_bytes(b"\0" * (2 * 1024 * 1024))
    store = small_volume / "store"
    env = {**script_env(fake_discord, url, store), "FILLER": str(filler)}
    done = run_script(RECOVER_SCRIPT, env, tmp_path)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.splitlines()[-1])
    assert report["full"], done.stderr
    assert report["back"], done.stderr
    lines = library_lines(done.stderr)
    assert len([line for line in lines if "is full" in line]) == 1, done.stderr
    assert len([line for line in lines if "works again" in line]) == 1, done.stderr
    assert "LOST" not in done.stderr
    kept = report["stats"]["dead_lettered"]
    assert len(kept_letters(store)) == kept == report["logged"]
