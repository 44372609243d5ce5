"""Fault matrix, store side: the durable store cannot be created, fills up, or is corrupt.
The handler must keep delivering, fall back to memory for dead letters, say so once on
stderr, and keep its books balanced."""

from __future__ import annotations

import errno
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from letterkit import destination_of

from discord_logging import DiscordHandler
from discord_logging.store import Store
from discord_logging.store.durable_letters import DurableDeadLetters
from discord_logging.store.history import History
from discord_logging.testing import FakeDiscord

from .faultkit import (
    DEADLINE,
    TimedLogger,
    assert_books_balance,
    make_handler,
    marked,
    message_text,
    wait_until,
    warm_up,
    webhook_id,
)

FALLBACK = "dead letters are kept in memory"  # the store's one line when it falls back
RECORDS = 10


# The deleted webhook's identity is known before the run: its letters' file can be corrupted.
GONE_ID, GONE_TOKEN = "1100000000000000001", "gone-token"
GONE = destination_of(f"https://discord.com/api/webhooks/{GONE_ID}/{GONE_TOKEN}")


def run_with_a_dead_webhook(
    fake: FakeDiscord, store_path: Path, records: int = RECORDS
) -> tuple[DiscordHandler, TimedLogger, dict[str, Any]]:
    """Log to a healthy webhook (errors) and a deleted one (infos, which become dead
    letters), settle, close; returns the handler, the logger and the final stats."""
    gone = fake.add_webhook(webhook_id=GONE_ID, token=GONE_TOKEN)
    fake.delete_webhook(webhook_id(gone))
    handler = make_handler(
        {"general": gone, "error": fake.add_webhook()}, fake.host, store_path=str(store_path)
    )
    log = TimedLogger(handler)
    warm_up(log, fake)
    for i in range(records):
        log.error("kept rec#%d#", i)
        log.info("dead rec#%d#", i)
    # flush() is True only when every dead letter is durable: with the store in memory it
    # says False, so wait for the lanes to settle instead.
    handler.flush(DEADLINE)
    wait_until(lambda: handler.stats()["queue_depth"] == 0)
    assert handler.stats()["dead_lettered"] == records
    handler.close()
    return handler, log, handler.stats()


def in_memory(handler: DiscordHandler) -> list[Any]:
    """The dead letters the degraded store holds in memory."""
    assert handler.store is not None
    return handler.store.memory.letters()


def on_disk(path: Path) -> list[Any]:
    """The dead letters a fresh Store finds on disk at ``path`` (empty if it cannot open)."""
    store = Store(path)
    try:
        return [] if store.degraded else store.dead_letters.letters()
    finally:
        store.close()


def assert_fell_back_once(
    handler: DiscordHandler, stats: dict[str, Any], err: str, cause: str, *, stays: bool = True
) -> None:
    """The store is degraded (``stays``: a full disk is tried again as letters arrive and may
    be back by now), counted, and said so exactly once, naming the cause."""
    assert handler.store is not None
    assert handler.store.degraded or not stays
    assert stats["store_errors"] >= 1
    lines = [line for line in err.splitlines() if FALLBACK in line]
    assert len(lines) == 1, err
    assert cause in lines[0]


def test_store_path_under_a_regular_file_falls_back_to_memory(
    fake: FakeDiscord, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Store path under a regular file: memory fallback said once, delivery, books unaffected."""
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the store's parent directory should be")
    handler, log, stats = run_with_a_dead_webhook(fake, blocker / "store")
    assert_fell_back_once(handler, stats, capsys.readouterr().err, "NotADirectoryError")
    assert_books_balance(stats, log.calls)
    assert stats["delivered"] == 1 + RECORDS
    assert marked(" ".join(x.notification.message for x in in_memory(handler))) == set(
        range(RECORDS)
    )
    assert marked(message_text(fake)) == set(range(RECORDS))
    log.assert_never_blocked()


@pytest.mark.parametrize(
    ("target", "method"),
    [(DurableDeadLetters, "write"), (History, "record_many")],
    ids=["dead-letters", "history"],
)
def test_disk_full_falls_back_to_memory(
    fake: FakeDiscord,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    target: type,
    method: str,
) -> None:
    """Disk full (ENOSPC) on letters or history: memory fallback said once, every letter kept."""

    def full(*args: Any, **kwargs: Any) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(target, method, full)
    handler, log, stats = run_with_a_dead_webhook(fake, tmp_path / "store")
    err = capsys.readouterr().err
    assert_fell_back_once(handler, stats, err, "No space left on device", stays=False)
    assert "is full" in err  # docs/architecture.md, "A full disk"
    assert_books_balance(stats, log.calls)
    assert stats["delivered"] == 1 + RECORDS
    kept = in_memory(handler) + on_disk(tmp_path / "store")
    assert marked(" ".join(x.notification.message for x in kept)) == set(range(RECORDS))
    assert len(kept) == RECORDS
    log.assert_never_blocked()


def corrupt(relative: str) -> Callable[[Path], None]:
    """Write garbage where the store keeps the SQLite file ``relative``."""

    def write(store: Path) -> None:
        target = store / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(b"this is not a database\x00\xff" * 512)

    return write


@pytest.mark.parametrize(
    "relative",
    ["deadletters-index/cache.db", f"deadletters/{GONE}/cache.db", "history/general/cache.db"],
)
def test_a_damaged_store_file_is_set_aside_and_the_store_goes_on(
    fake: FakeDiscord, tmp_path: Path, capsys: pytest.CaptureFixture[str], relative: str
) -> None:
    """A damaged store file: set aside under a dated name and said once, a fresh one opened,
    delivery and the books unaffected, every letter kept on disk (not in memory for good)."""
    store_path = tmp_path / "store"
    corrupt(relative)(store_path)
    handler, log, stats = run_with_a_dead_webhook(fake, store_path)
    assert handler.store is not None
    assert not handler.store.degraded
    err = capsys.readouterr().err
    assert err.count("damaged store file set aside") == 1, err
    assert FALLBACK not in err
    damaged = Path(relative).parent.name + ".damaged-"
    assert [p for p in store_path.rglob("*") if p.name.startswith(damaged)]
    assert_books_balance(stats, log.calls)
    assert stats["delivered"] == 1 + RECORDS
    kept = on_disk(store_path)
    assert marked(" ".join(x.notification.message for x in kept)) == set(range(RECORDS))
    log.assert_never_blocked()


def test_close_message_says_memory_when_the_store_fell_back(
    fake: FakeDiscord, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The close line tells the operator the truth: letters only in memory are LOST at exit."""
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("x")
    run_with_a_dead_webhook(fake, blocker / "store")
    err = capsys.readouterr().err.splitlines()
    closing = [line for line in err if "dead letters LOST (the store" in line]  # at close
    assert len(closing) == 1
    assert "dead letters LOST" in closing[0], closing[0]


def test_memory_letters_evicted_past_capacity_are_counted_and_reported_lost(
    fake: FakeDiscord, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The memory fallback is bounded: what it evicts is counted (dead_letters_evicted), said
    once on stderr when it starts, and the exit line reports it LOST with the rest."""
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("x")
    gone = fake.add_webhook()
    fake.delete_webhook(webhook_id(gone))
    handler = make_handler(
        {"general": gone, "error": fake.add_webhook()},
        fake.host,
        store_path=str(blocker / "store"),
    )
    assert handler.store is not None
    handler.store.memory.capacity = 3  # the fallback holds 100,000 letters; 3 here
    log = TimedLogger(handler)
    warm_up(log, fake)
    for i in range(8):
        log.info("dead rec#%d#", i)
    handler.flush(DEADLINE)
    wait_until(lambda: handler.stats()["dead_lettered"] == 8)
    handler.close()
    stats = handler.stats()
    assert stats["dead_letters_evicted"] == 5
    err = capsys.readouterr().err
    assert err.count("the oldest are dropped from now on and are lost") == 1
    (closing,) = [line for line in err.splitlines() if "dead letters LOST (the store" in line]
    assert "3 dead letters LOST" in closing
    assert "5 more LOST (evicted from memory)" in closing
