"""A flood while Discord is down costs bounded memory (docs/architecture.md, "Memory in a
flood"): records in memory never exceed ``DISCORD_MEMORY_MAX_RECORDS``, the rest are counted
as ``dropped.memory_full`` and said once, and every record is accounted for."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from processkit import kept_letters, library_lines, run_script, script_env

from discord_logging.testing import FakeDiscord

pytestmark = pytest.mark.slow  # a real process

LIMIT = 500
FLOOD = 3_000
# The worker is parked while the flood is logged, so nothing leaves memory meanwhile (the store
# could otherwise keep up on a quiet machine, and the bound would never be reached): the count
# is then exact, not a race. Discord answers 503 throughout.
FLOOD_SCRIPT = f"""
import json
handler = make_handler(memory_max_records={LIMIT}, queue_size=50, close_timeout=1.0)
handler.wait_started(60)
log.addHandler(handler)
worker = handler._worker
resume = worker.park(60)
for i in range({FLOOD}):
    log.error(f"order {{i}} failed validation")  # distinct records
in_memory = (
    len(worker._handoff) + len(worker._early) + worker.notifier.queue_depth()
    + handler.store.memory_only
)
resume()
handler.close()
print(json.dumps({{"in_memory": in_memory, "stats": handler.stats()}}))
"""


def test_a_flood_keeps_the_bound_and_accounts_for_every_record(
    fake_discord: FakeDiscord, tmp_path: Path
) -> None:
    """3,000 distinct records logged while the worker takes none and Discord answers 503:
    at most 500 are in memory at once; the rest are dropped as ``memory_full`` with one stderr
    line; every accepted record is delivered, folded or kept on disk (none lost)."""
    url = fake_discord.add_webhook(host="localhost")
    fake_discord.fail_next(1_000_000, 503)
    store = tmp_path / "store"
    done = run_script(FLOOD_SCRIPT, script_env(fake_discord, url, store), tmp_path)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.splitlines()[-1])
    stats = report["stats"]
    assert report["in_memory"] <= LIMIT
    accepted, dropped = stats["emitted"], stats["dropped"]
    assert dropped.get("memory_full", 0) > 0
    assert accepted + sum(dropped.values()) == FLOOD
    assert set(dropped) == {"memory_full"}
    assert accepted == stats["delivered"] + stats["aggregated"] + stats["dead_lettered"]
    assert stats["queue_depth"] == 0
    assert len(kept_letters(store)) == stats["dead_lettered"]  # kept on disk, none LOST
    said = [line for line in library_lines(done.stderr) if "MEMORY_MAX_RECORDS" in line]
    assert len(said) == 1, done.stderr
    assert "Traceback" not in done.stderr
