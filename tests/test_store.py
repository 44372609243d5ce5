"""The durable store: JSON only, private, shared across processes, retained, resilient."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import pickle
import sqlite3
import stat
import subprocess
import sys
import textwrap
import time
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from letterkit import DESTINATION, destination_of
from waiting import FAILSAFE

from discord_logging import DiscordHandler, Notifier
from discord_logging.capture.direct import build_notification
from discord_logging.deadletters import DeadLetter, DeadLetterReason
from discord_logging.notification import DeliveryStatus, Notification, NotificationResult
from discord_logging.store import Store, UnsafeStoreRow, delete_many, open_cache, put_many
from discord_logging.testing import FakeDiscord

EPOCH = time.time() - 3600  # letters died an hour ago: well inside any retention


def note(i: int = 0, alert_type: str = "error", created: float | None = None) -> Notification:
    return Notification(
        alert_type=alert_type,
        title=f"record {i}",
        message=f"message {i}",
        created=time.time() if created is None else created,
    )


def letter(i: int = 0, reason: DeadLetterReason = DeadLetterReason.RETRIES_EXHAUSTED) -> DeadLetter:
    return DeadLetter(
        note(i),
        "general",
        reason,
        attempts=3,
        error="503",
        dead_at=EPOCH + i,
        destination=DESTINATION,
    )


def delivered(n: Notification, message_id: str = "42") -> NotificationResult:
    return NotificationResult(n.id, DeliveryStatus.DELIVERED, "1", message_id, attempts=1)


def test_directories_are_private(tmp_path: Path) -> None:
    """The store and every cache directory in it are created with mode 0700."""
    store = Store(tmp_path / "deep" / "store")
    store.dead_letters.add(letter())
    assert store.history is not None
    store.history.record(note(), delivered(note()), "general")
    store.close()
    for path in [tmp_path / "deep" / "store", *(tmp_path / "deep" / "store").rglob("*")]:
        if path.is_dir():
            assert stat.S_IMODE(path.stat().st_mode) == 0o700, path


def test_values_are_json_never_pickle(tmp_path: Path) -> None:
    """What the store writes is JSON text; the database holds no pickle rows."""
    store = Store(tmp_path)
    store.dead_letters.add(letter())
    store.close()
    db = tmp_path / "deadletters" / DESTINATION / "cache.db"
    with closing(sqlite3.connect(db)) as con, con:
        rows = con.execute("SELECT mode, value FROM Cache").fetchall()
    assert rows
    for mode, value in rows:
        assert mode != 4  # MODE_PICKLE
        json.loads(value)


def test_planted_pickle_row_is_refused(tmp_path: Path) -> None:
    """A pickle written into the store (CVE-2025-69872) is refused, never unpickled."""

    class Boom:
        def __reduce__(self) -> tuple[object, ...]:
            return (os.system, ("touch " + str(tmp_path / "pwned"),))

    cache = open_cache(tmp_path / "planted")
    cache.set("k", "ok")
    cache.close()
    with closing(sqlite3.connect(tmp_path / "planted" / "cache.db")) as con, con:
        con.execute("UPDATE Cache SET mode = 4, value = ? WHERE key = 'k'", (pickle.dumps(Boom()),))
    cache = open_cache(tmp_path / "planted")
    with pytest.raises(UnsafeStoreRow, match="refused a pickled row"):
        cache.get("k")
    cache.close()
    assert not (tmp_path / "pwned").exists()


def test_bulk_writes_keep_diskcache_rows_counts_and_value_files(tmp_path: Path) -> None:
    """put_many and delete_many write what ``set`` and ``delete`` would: the same values, the
    same count and size, and a large value's file (beside the database) removed when its row
    is replaced or deleted, not left behind."""
    big = {"text": "x" * 100_000}  # above diskcache's 32 KB: kept in a file
    cache = open_cache(tmp_path / "bulk")
    put_many(cache, {"a": big, "b": {"n": 1}, "c": big}, None)

    def files() -> list[Path]:
        return sorted((tmp_path / "bulk").rglob("*.val"))

    assert len(files()) == 2
    assert [cache.get("a"), cache.get("b"), len(cache)] == [big, {"n": 1}, 3]
    put_many(cache, {"a": {"n": 2}}, None)  # replaced by a small value: its file goes
    assert len(files()) == 1
    assert [cache.get("a"), len(cache)] == [{"n": 2}, 3]
    size_before = cache.volume()
    delete_many(cache, ["c", "b", "missing"])
    assert files() == []
    assert [list(cache), len(cache)] == [["a"], 1]
    assert cache.volume() < size_before
    assert cache.check() == []  # diskcache's own check: counts, sizes and files agree
    cache.close()


def test_planted_pickle_in_dead_letters_is_skipped_and_counted(tmp_path: Path) -> None:
    """The sink skips a refused row, keeps serving the others, and counts the refusal."""
    store = Store(tmp_path)
    store.dead_letters.add(letter(1))
    store.dead_letters.add(letter(2))
    store.close()
    with closing(sqlite3.connect(tmp_path / "deadletters" / DESTINATION / "cache.db")) as con, con:
        con.execute("UPDATE Cache SET mode = 4, value = ? WHERE rowid = 1", (pickle.dumps("x"),))
    store = Store(tmp_path)
    letters = store.dead_letters.letters()
    assert [x.notification.title for x in letters] == ["record 2"]
    assert store.durable is not None
    assert store.durable.refused_rows == 1
    store.close()


@pytest.mark.slow  # a real process
def test_persistence_across_processes(tmp_path: Path) -> None:
    """A dead letter written by another process is read here, and vice versa."""
    store = Store(tmp_path)
    store.dead_letters.add(letter(1))
    store.close()
    code = textwrap.dedent(
        f"""
        from discord_logging.store import Store
        store = Store({str(tmp_path)!r})
        (first,) = store.dead_letters.letters()
        assert first.notification.title == "record 1", first
        from discord_logging.deadletters import DeadLetter, DeadLetterReason
        store.dead_letters.add(DeadLetter(first.notification.__class__(
            alert_type="error", title="from child", message="m"), "general",
            DeadLetterReason.SHUTDOWN))
        store.close()
        """
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
    store = Store(tmp_path)
    titles = sorted(x.notification.title for x in store.dead_letters.letters())
    store.close()
    assert titles == ["from child", "record 1"]


def test_retryable_is_oldest_first_per_webhook_and_claimed(tmp_path: Path) -> None:
    """retryable() returns the webhook's retryable letters oldest first, each claimed once."""
    store = Store(tmp_path)
    sink = store.dead_letters
    for i in (3, 1, 2):
        sink.add(letter(i))
    sink.add(letter(9, DeadLetterReason.POISON))
    first = sink.retryable(DESTINATION, 10)
    assert [x.notification.title for x in first] == ["record 1", "record 2", "record 3"]
    assert sink.retryable(DESTINATION, 10) == []  # claimed by us already... by this process
    store.close()


def test_delivered_letter_is_never_posted_again(tmp_path: Path) -> None:
    """A letter whose notification has a message id in the history is dropped, not returned."""
    store = Store(tmp_path)
    dead = letter(1)
    store.dead_letters.add(dead)
    store.dead_letters.sync()
    assert store.history is not None
    store.history.record(dead.notification, delivered(dead.notification), "general")
    assert store.dead_letters.retryable(DESTINATION, 10) == []
    assert len(store.dead_letters) == 0
    store.close()


def test_history_query_filters_newest_first(tmp_path: Path) -> None:
    """Filters by type, status, time and text; newest first; limit."""
    store = Store(tmp_path)
    history = store.history
    assert history is not None
    for i in range(10):
        n = note(i, "error" if i % 2 else "security", created=1000.0 + i)
        result = delivered(n) if i < 8 else NotificationResult(n.id, DeliveryStatus.DEAD_LETTERED)
        history.record(n, result, "general")
    assert [e["title"] for e in history.query(limit=3)] == ["record 9", "record 8", "record 7"]
    assert [e["title"] for e in history.query(alert_type="error", limit=2)] == [
        "record 9",
        "record 7",
    ]
    assert [e["title"] for e in history.query(status="dead_lettered")] == ["record 9", "record 8"]
    assert [e["title"] for e in history.query(since=1007.0)] == ["record 9", "record 8", "record 7"]
    assert [e["title"] for e in history.query(alert_type="error", until=1002.0)] == ["record 1"]
    assert [e["title"] for e in history.query(text="RECORD 4")] == ["record 4"]
    assert history.counts() == {
        "error": {"delivered": 4, "dead_lettered": 1},
        "security": {"delivered": 4, "dead_lettered": 1},
    }
    entry = history.query(limit=1)[0]
    assert entry["webhook"] == "general"
    assert "token" not in json.dumps(entry).lower()
    store.close()


def test_retention_by_age_exports_first(tmp_path: Path) -> None:
    """Entries older than the retention are exported to JSON Lines, then purged."""
    store = Store(tmp_path / "s", retention_days=1, export_dir=tmp_path / "exports")
    history = store.history
    assert history is not None
    now = 10 * 86_400.0
    for i, age_days in enumerate([5, 3, 0.5, 0.1]):
        n = note(i, created=now - age_days * 86_400)
        history.record(n, delivered(n), "general")
    assert store.cleanup(now=now) == 2
    assert [e["title"] for e in history.query()] == ["record 3", "record 2"]
    (export,) = (tmp_path / "exports").iterdir()
    lines = [json.loads(line) for line in export.read_text().splitlines()]
    assert [e["title"] for e in lines] == ["record 0", "record 1"]
    store.close()


def test_retention_by_size(tmp_path: Path) -> None:
    """Over the size cap the oldest entries go first."""
    store = Store(tmp_path, max_bytes=1024 * 1024)
    history = store.history
    assert history is not None
    for i in range(300):
        n = Notification(alert_type="error", title=f"r{i}", message="x" * 8000, created=1000.0 + i)
        history.record(n, delivered(n), "general")
    removed = store.cleanup(now=2000.0)
    assert removed > 0
    titles = [e["title"] for e in history.query(limit=1000)]
    assert titles[0] == "r299"
    assert "r0" not in titles
    store.close()


def test_unusable_store_falls_back_to_memory_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A store path that cannot be created falls back to memory and says so once."""
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    store = Store(blocker / "store")
    assert store.degraded
    store.dead_letters.add(letter(1))
    store.dead_letters.add(letter(2))
    assert len(store.dead_letters) == 2
    assert not store.dead_letters.durable
    assert capsys.readouterr().err.count("cannot be used") == 1
    assert store.stats.get("store_errors") == 1


def test_store_failing_later_falls_back(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A write error after start-up switches to memory without raising, and keeps the letter."""
    store = Store(tmp_path)
    assert store.durable is not None

    def broken(*_: object) -> None:
        raise sqlite3.OperationalError("database or disk is full")

    store.durable.write = broken  # type: ignore[method-assign]
    store.dead_letters.add(letter(1))
    store.dead_letters.sync()
    assert store.degraded
    assert [x.notification.title for x in store.dead_letters.letters()] == ["record 1"]
    assert "disk is full" in capsys.readouterr().err


def test_a_damaged_index_is_set_aside_and_rebuilt_from_the_letters(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A store file full of garbage (a disk hiccup, a half-copied backup) does not leave the
    store in memory for good: the damaged cache is set aside under a dated name, a fresh one
    is opened, the letters still readable are indexed again, and stderr says so once."""
    store = Store(tmp_path)
    for i in (1, 2):
        store.dead_letters.add(letter(i))
    store.close()
    index = tmp_path / "deadletters-index"
    for leftover in index.glob("cache.db-*"):  # the WAL files of the good database
        leftover.unlink()
    (index / "cache.db").write_bytes(b"garbage" * 1000)
    store = Store(tmp_path)
    assert not store.degraded
    found = store.dead_letters.retryable(DESTINATION, 10)
    assert sorted(x.notification.title for x in found) == ["record 1", "record 2"]
    store.close()
    (aside,) = [p for p in tmp_path.iterdir() if p.name.startswith("deadletters-index.damaged-")]
    assert (aside / "cache.db").read_bytes().startswith(b"garbage")
    err = capsys.readouterr().err
    assert err.count("set aside") == 1
    assert "2 kept letters re-indexed" in err


def test_handler_redelivers_from_the_store_after_an_outage(tmp_path: Path) -> None:
    """Records kept during an outage are redelivered once the webhook is healthy again."""
    with FakeDiscord() as fake:
        url = fake.add_webhook()
        webhook_id = url.split("/")[-2]
        fake.set_status_override(webhook_id, 503)
        handler = DiscordHandler(
            webhooks={"general": url},
            allowed_hosts=fake.host,
            retry_attempts=1,
            aggregate_window=0,
            store_path=str(tmp_path / "store"),
        )
        logger = logging.getLogger("outage")
        logger.addHandler(handler)
        logger.propagate = False
        for i in range(3):
            logger.error("during outage %d", i)
        assert handler.flush(FAILSAFE)  # kept durably counts as flushed
        assert len(handler.dead_letters) == 3
        fake.set_status_override(webhook_id, None)
        logger.error("after the outage")
        deadline = time.monotonic() + FAILSAFE
        while len(handler.dead_letters) and time.monotonic() < deadline:
            time.sleep(0.02)
        handler.close()
    titles = sorted(e.get("title") for m in fake.messages for e in m.embeds)
    assert titles == [
        "after the outage",
        "during outage 0",
        "during outage 1",
        "during outage 2",
    ]
    assert len(handler.dead_letters) == 0
    store = Store(tmp_path / "store")
    assert store.history is not None
    statuses = {e["title"]: e["status"] for e in store.history.query()}
    store.close()
    assert set(statuses.values()) == {"delivered"}


def test_planted_row_can_be_purged(tmp_path: Path) -> None:
    """A refused row is removed by purge, so an operator can clear it with the CLI."""
    store = Store(tmp_path)
    store.dead_letters.add(letter(1))
    store.close()
    with closing(sqlite3.connect(tmp_path / "deadletters" / DESTINATION / "cache.db")) as con, con:
        con.execute("UPDATE Cache SET mode = 4, value = ?", (pickle.dumps("x"),))
    store = Store(tmp_path)
    assert store.durable is not None
    assert store.durable.letters() == []
    assert store.durable.purge() == 1
    assert len(store.dead_letters) == 0
    store.close()


async def test_a_letter_kept_for_one_app_is_never_posted_by_another_sharing_the_store(
    tmp_path: Path,
) -> None:
    """Two apps with their own webhooks share one store (the default store is one per OS
    user): app B never posts what app A kept for its own webhook; A's next run does (rule 2,
    docs/architecture.md "A letter's life")."""
    with FakeDiscord() as fake:
        url_a, url_b = fake.add_webhook(), fake.add_webhook()
        store = Store(tmp_path)
        private = DeadLetter(
            build_notification("error", "app A private: customer 4242 card declined"),
            "error",
            DeadLetterReason.RETRIES_EXHAUSTED,
            dead_at=time.time() - 60,
            destination=destination_of(url_a),
        )
        store.dead_letters.add(private)
        store.dead_letters.sync()
        for url in (url_b, url_a):  # app B starts first, then app A
            app = Notifier(
                webhooks={"error": url}, allowed_hosts=fake.host, dead_letters=store.dead_letters
            )
            app.start()  # its lane looks for kept letters at once
            for _ in range(30):
                await asyncio.sleep(0.01)
                if fake.messages:
                    break
            await app.aclose()
            if url == url_b:
                assert fake.messages == [], "app B posted app A's letter"
        store.close()
        (message,) = fake.messages
        assert message.webhook_id == url_a.split("/")[-2]
        assert "customer 4242" in json.dumps(message.payload)


@pytest.mark.slow  # a real process
async def test_flush_waits_for_overflow_another_holder_still_has(tmp_path: Path) -> None:
    """A handler's overflow claimed by another live process is still owed: flush() says False
    while that process holds the letters (a count's guess said True and the letters were
    delivered after the script had gone), and True once they went out (rule 4)."""
    with FakeDiscord() as fake:
        url = fake.add_webhook()
        store = Store(tmp_path)
        n = Notifier(
            webhooks={"general": url},
            allowed_hosts=fake.host,
            dead_letters=store.dead_letters,
            queue_size=2,
            rate_limit=100,
        )
        fake.set_hang(True)  # the first request waits: the rest queues, then overflows
        for i in range(10):
            n.submit(build_notification("general", f"burst {i}"))
        store.dead_letters.sync()
        kept = store.dead_letters.letters()
        assert len(kept) >= 5
        claim_all = (
            "import sys\n"
            "from discord_logging.store import Store\n"
            f"store = Store({str(tmp_path)!r})\n"
            "for x in store.durable.letters():\n"
            "    assert store.durable.claim(x.id)\n"
            "print('claimed', flush=True)\n"
            "sys.stdin.readline()\n"
        )
        holder = subprocess.Popen(
            [sys.executable, "-c", claim_all],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert holder.stdout is not None
            assert holder.stdout.readline().strip() == "claimed"
            fake.set_hang(False)
            assert await n.flush(1.0) is False  # the other process still has them
        finally:
            assert holder.stdin is not None
            holder.stdin.close()
            holder.wait(FAILSAFE)
            if holder.stdout is not None:
                holder.stdout.close()
        # The holder is gone: its claims are taken over and the letters go out.
        assert await n.flush(FAILSAFE) is True
        await n.aclose()
        store.close()
        titles = sorted(e["title"] for m in fake.messages for e in m.payload["embeds"])
        assert titles == sorted(f"burst {i}" for i in range(10))  # each exactly once


def test_a_letter_delivered_since_it_was_listed_cannot_be_claimed(tmp_path: Path) -> None:
    """An operator's flush works from a list read at its start: a letter the application
    delivered (and removed) meanwhile cannot be claimed from that list, so it is not posted
    again (the claim checks, in its transaction, that the letter is still kept)."""
    store = Store(tmp_path)
    sink = store.dead_letters
    sink.add(letter(1))
    sink.sync()
    durable = store.durable
    assert durable is not None
    (listed,) = durable.letters()
    sink.remove(listed.id)  # delivered by the application meanwhile
    sink.sync()
    assert durable.claim(listed.id) is None
    store.close()


def test_the_history_is_written_before_the_removal_it_explains(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A delivered letter's history entry reaches the disk before its removal: a reader in
    between finds it delivered, never neither kept nor delivered."""
    store = Store(tmp_path)
    sink = store.dead_letters
    kept = letter(2)
    sink.add(kept)
    sink.sync()
    order: list[str] = []
    history, durable = store.history, store.durable
    assert history is not None
    assert durable is not None

    def spy(name: str, real: Any) -> Any:
        return lambda *args: (order.append(name), real(*args))[1]

    monkeypatch.setattr(history, "record_many", spy("history", history.record_many))
    monkeypatch.setattr(durable, "write", spy("letters", durable.write))
    store.record(kept.notification, delivered(kept.notification), "general")
    sink.remove(kept.id)
    sink.sync()
    assert order == ["history", "letters"]
    store.close()
