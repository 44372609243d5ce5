"""Dead letters at scale: reads in proportion to what they return, old stores, retention."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from letterkit import DESTINATION

from discord_logging.deadletters import DeadLetter, DeadLetterReason
from discord_logging.notification import Notification
from discord_logging.store import Store, claim_row, open_cache
from discord_logging.store._holders import Holder
from discord_logging.store.history import entry_key

NOW = time.time()


def letter(
    i: int,
    reason: DeadLetterReason = DeadLetterReason.RETRIES_EXHAUSTED,
    dead_at: float | None = None,
    size: int = 10,
) -> DeadLetter:
    n = Notification(alert_type="error", title=f"record {i}", message="x" * size)
    return DeadLetter(
        n,
        "general",
        destination=DESTINATION,
        reason=reason,
        dead_at=NOW - 3600 + i if dead_at is None else dead_at,
    )


@pytest.fixture
def rows_read(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the dead letters decoded from disk (each a row read)."""
    count = [0]
    real = DeadLetter.from_dict.__func__  # type: ignore[attr-defined]

    def counting(cls: type[DeadLetter], data: dict[str, Any]) -> DeadLetter:
        count[0] += 1
        result: DeadLetter = real(cls, data)
        return result

    monkeypatch.setattr(DeadLetter, "from_dict", classmethod(counting))
    return count


def test_retryable_reads_in_proportion_to_what_it_returns(
    tmp_path: Path, rows_read: list[int]
) -> None:
    """With 2,000 operator-only letters older than 5 retryable ones, finding the retryable
    ones reads those 5 rows, not the 2,005 stored."""
    store = Store(tmp_path)
    sink = store.dead_letters
    for i in range(2000):
        sink.add(letter(i, DeadLetterReason.POISON))
    for i in range(2000, 2005):
        sink.add(letter(i))
    sink.sync()
    rows_read[0] = 0
    found = sink.retryable(DESTINATION, 50)
    assert [x.notification.title for x in found] == [f"record {i}" for i in range(2000, 2005)]
    assert rows_read[0] <= 10
    assert len(sink) == 2005
    store.close()


def test_retryable_stops_at_its_limit(tmp_path: Path, rows_read: list[int]) -> None:
    """retryable(webhook, 3) over 500 retryable letters reads about 3 rows, oldest first."""
    store = Store(tmp_path)
    sink = store.dead_letters
    for i in range(500):
        sink.add(letter(i))
    sink.sync()
    rows_read[0] = 0
    assert [x.notification.title for x in sink.retryable(DESTINATION, 3)] == [
        "record 0",
        "record 1",
        "record 2",
    ]
    assert rows_read[0] <= 3
    store.close()


def test_retryable_finds_letters_behind_many_claimed_by_a_live_process(tmp_path: Path) -> None:
    """In a fleet the oldest letters are often claimed by another live process still sending
    them: each look passes over a bounded number of them and the next goes on from there,
    so successive looks reach the free ones behind 500 claimed (every look starting from the
    oldest would come back empty for as long as the claims last)."""
    store = Store(tmp_path)
    sink = store.dead_letters
    for i in range(600):
        sink.add(letter(i))
    sink.sync()
    durable = store.durable
    assert durable is not None
    other = Holder(tmp_path)  # alive (its lock held), and not this store's holder
    index = open_cache(tmp_path / "deadletters-index")  # the claims, as that process writes them
    for x in sorted(durable.letters(), key=lambda x: x.dead_at)[:500]:
        index.set(f"claim:{x.id}", claim_row(other.identity, time.time(), 120), expire=120)
    index.close()
    looks, cut = [], []
    while len(looks) < 10 and not (looks and looks[-1]):
        looks.append(sink.retryable(DESTINATION, 50))
        cut.append(sink.scan_cut_short(DESTINATION))
    # 150 keys passed per look (50 + SCAN_SLACK): three empty looks, each cut short, then 50
    assert [len(found) for found in looks] == [0, 0, 0, 50]
    assert cut == [True, True, True, False]
    assert [x.notification.title for x in looks[-1]] == [f"record {i}" for i in range(500, 550)]
    other.release()
    store.close()


def plant_old_layout(path: Path, letters: list[DeadLetter]) -> None:
    """Write ``letters`` as stores written before the split keep them: every letter under
    deadletters/<webhook>/, the index holding [webhook, key]."""
    index = open_cache(path / "deadletters-index")
    cache = open_cache(path / "deadletters" / DESTINATION)
    for x in letters:
        key = entry_key(x.dead_at, x.id)
        cache.set(key, x.to_dict())
        index.set(f"id:{x.id}", [DESTINATION, key])
    cache.close()
    index.close()


def test_a_store_written_before_the_split_is_read_and_migrated(
    tmp_path: Path, rows_read: list[int]
) -> None:
    """Letters of the old layout are all still read; redelivery walks past the operator-only
    ones once, the writer moves them to the held range, and later reads skip them."""
    old = [letter(i, DeadLetterReason.POISON) for i in range(100)] + [letter(100)]
    plant_old_layout(tmp_path, old)
    store = Store(tmp_path)
    sink = store.dead_letters
    assert [x.notification.title for x in sink.letters()] == [f"record {i}" for i in range(101)]
    (found,) = sink.retryable(DESTINATION, 10)
    assert found.notification.title == "record 100"
    durable = store.durable
    assert durable is not None
    assert durable.misplaced == 100
    durable.move_misplaced()  # what the writer does after such a read
    assert (tmp_path / "deadletters-held" / DESTINATION).is_dir()
    sink.remove(found.id)
    sink.sync()
    rows_read[0] = 0
    assert sink.retryable(DESTINATION, 10) == []
    assert rows_read[0] == 0
    assert len(sink) == 100
    poison = old[5]
    assert durable.get(poison.id) == poison  # the index follows the move
    sink.remove(poison.id)
    sink.sync()
    assert len(sink) == 99
    store.close()
    store = Store(tmp_path)
    assert [x.notification.title for x in store.dead_letters.letters()][:5] == [
        "record 0",
        "record 1",
        "record 2",
        "record 3",
        "record 4",
    ]
    store.close()


def test_dead_letter_retention_by_age_exports_first(tmp_path: Path) -> None:
    """Letters older than the dead-letter retention are appended to
    deadletters-purged-YYYYMMDD.jsonl, then deleted; the younger ones stay."""
    store = Store(tmp_path / "s", dead_letter_retention_days=7, export_dir=tmp_path / "exports")
    sink = store.dead_letters
    now = NOW
    for i, age_days in enumerate([40, 8, 6, 0.1]):
        reason = DeadLetterReason.POISON if i == 1 else DeadLetterReason.SHUTDOWN
        sink.add(letter(i, reason, dead_at=now - age_days * 86_400))
    sink.sync()
    assert store.cleanup(now=now) == 2
    assert [x.notification.title for x in sink.letters()] == ["record 2", "record 3"]
    stamp = time.strftime("%Y%m%d", time.gmtime(now))
    export = tmp_path / "exports" / f"deadletters-purged-{stamp}.jsonl"
    rows = [json.loads(line) for line in export.read_text().splitlines()]
    assert sorted(r["notification"]["title"] for r in rows) == ["record 0", "record 1"]
    store.close()


def test_dead_letter_size_cap_deletes_the_oldest(tmp_path: Path) -> None:
    """Over dead_letter_max_bytes the oldest letters go first, the newest stay."""
    store = Store(tmp_path, dead_letter_max_bytes=1024 * 1024)
    sink = store.dead_letters
    for i in range(300):
        sink.add(letter(i, size=8000))
    sink.sync()
    removed = store.cleanup(now=NOW)
    assert removed > 0
    titles = [x.notification.title for x in sink.letters()]
    assert titles[-1] == "record 299"
    assert "record 0" not in titles
    assert len(titles) == 300 - removed
    store.close()
