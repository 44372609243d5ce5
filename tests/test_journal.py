"""The per-process journal (issue 19, point 1): its frames, a torn last write, its bound,
segments deleted once settled, and taking a dead process's journal into the store once."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import WEBHOOK, attach
from letterkit import destination_of
from processkit import run_script, script_env
from waiting import FAILSAFE

from discord_logging import DiscordHandler, MemoryDeadLetters
from discord_logging.capture.snapshot import snapshot
from discord_logging.deadletters import DeadLetterReason
from discord_logging.delivery import journaling
from discord_logging.delivery.journaling import letters_of, recover_dead
from discord_logging.notification import DeliveryStatus, NotificationResult
from discord_logging.stats import DeliveryStats
from discord_logging.store import Store
from discord_logging.store._holders import KERNEL, Identity
from discord_logging.store.journal import (
    RECORD,
    SETTLED,
    Journal,
    dead_segments,
    frame,
    frames,
    give_back,
    take,
)
from discord_logging.testing import FakeDiscord
from discord_logging.transport.webhook_url import parse_webhook_url

IDENTITY = parse_webhook_url(WEBHOOK).identity


def row(record_id: str, message: str = "boom") -> list[object]:
    """One record as the worker journals it: id, webhook identity, lane, snapshot."""
    record = logging.makeLogRecord(
        {"msg": message, "levelno": 40, "levelname": "ERROR", "created": 1_700_000_000.0}
    )
    return [record_id, IDENTITY, "general", snapshot(record, "error", logging.Formatter())]


def payload(record_id: str, message: str = "boom") -> bytes:
    """A record frame's payload holding one record."""
    return json.dumps([row(record_id, message)], separators=(",", ":")).encode()


def group(*ids: str, titled: bool = False) -> tuple[list[str], bytes]:
    """The arguments of ``Journal.append`` for records ``ids`` (titled "record <id>")."""
    rows = [row(i, f"record {i}" if titled else "boom") for i in ids]
    return list(ids), json.dumps(rows, separators=(",", ":")).encode()


def dead_journal(directory: Path, ids: list[str], stats: DeliveryStats | None = None) -> Journal:
    """A journal with ``ids`` unsettled, then closed: its holder released its lock, so it is
    a dead holder's, as a killed process's is."""
    journal = Journal(directory, 1 << 20, stats or DeliveryStats())
    journal.append(*group(*ids, titled=True))
    journal.close()
    return journal


def test_frames_round_trip_and_a_torn_last_frame_is_ignored_and_counted() -> None:
    """Frames read back as written; a last frame cut short, or one whose CRC does not match,
    ends the reading and is reported as torn; what came before is kept."""
    whole = frame(RECORD, b'["a"]') + frame(SETTLED, b"a,b")
    assert frames(whole) == ([(RECORD, b'["a"]'), (SETTLED, b"a,b")], False)
    last = frame(RECORD, b'["c"]')
    for torn in (whole + last[:-2], whole + last[:4]):
        assert frames(torn) == ([(RECORD, b'["a"]'), (SETTLED, b"a,b")], True)
    corrupt = whole + last[:-1] + b"X"
    assert frames(corrupt)[1] is True
    assert len(frames(corrupt)[0]) == 2


def test_a_torn_tail_in_a_dead_journal_loses_only_that_record(tmp_path: Path) -> None:
    """A dead process's segment whose last write was cut short: its whole records are taken
    into the store, the torn one is counted (``journal_torn``), nothing raises."""
    stats = DeliveryStats()
    dead_journal(tmp_path / "journal", ["r1", "r2"])
    (segment,) = (tmp_path / "journal").iterdir()
    with segment.open("ab") as f:
        f.write(frame(RECORD, payload("r3"))[:-10])
    store = Store(tmp_path)
    me = Journal(tmp_path / "journal", 1 << 20, stats)
    assert recover_dead(tmp_path / "journal", store, me) == 2
    assert stats.get("journal_torn") == 1
    assert stats.get("journal_recovered") == 2
    letters = store.dead_letters.letters()
    assert sorted(letter.id for letter in letters) == ["r1", "r2"]
    assert {letter.reason for letter in letters} == {DeadLetterReason.PROCESS_ENDED}
    assert {letter.destination for letter in letters} == {IDENTITY}
    assert list((tmp_path / "journal").iterdir()) == []
    me.close()


def test_recovery_keeps_the_original_time_and_only_what_was_not_settled(tmp_path: Path) -> None:
    """Settled records stay out; a record a request carried without an answer is kept as
    ``uncertain`` (Discord may have it), one answered as not posted as ``process_ended``;
    each letter keeps the record's own time."""
    journal = Journal(tmp_path, 1 << 20, DeliveryStats())
    journal.append(*group("a", "b", "c", "d"))
    journal.settle(["a"])
    journal.sent(["b", "c"])
    journal.answered(["c"])
    (segment,) = tmp_path.iterdir()
    letters, torn = letters_of(segment.read_bytes())
    assert torn == 0
    reasons = {letter.id: letter.reason for letter in letters}
    assert reasons == {
        "b": DeadLetterReason.UNCERTAIN,
        "c": DeadLetterReason.PROCESS_ENDED,
        "d": DeadLetterReason.PROCESS_ENDED,
    }
    assert all(letter.dead_at == letter.notification.created for letter in letters)
    journal.close()


def test_unreadable_records_are_counted_not_raised() -> None:
    """A whole frame whose JSON is not a record is counted with the torn ones and skipped."""
    data = frame(RECORD, b"not json") + frame(RECORD, b'[["x","id","general",[1]]]')
    letters, bad = letters_of(data + frame(RECORD, payload("ok")))
    assert [letter.id for letter in letters] == ["ok"]
    assert bad == 2


def test_a_segment_is_deleted_once_every_record_in_it_is_settled(tmp_path: Path) -> None:
    """Past the segment size the journal starts a new segment; an older segment goes as soon
    as its records are settled, the current one when it is large or the journal closes."""
    journal = Journal(tmp_path, 1 << 20, DeliveryStats(), segment_bytes=100)
    journal.append(*group("a"))
    journal.append(*group("b"))
    assert len(list(tmp_path.iterdir())) == 2
    journal.settle(["a", "unknown"])
    assert len(list(tmp_path.iterdir())) == 1
    journal.settle(["b"])
    assert len(list(tmp_path.iterdir())) == 1  # the current one, small: kept for the next
    assert journal.outstanding == 0
    journal.append(*group("c"))  # the settled current one is deleted
    journal.append(*group("d"))
    journal.close()
    names = sorted(p.name.rsplit(".", 2)[1] for p in tmp_path.iterdir())
    assert names == ["3", "4"]  # c and d were never settled: kept for the next start
    journal.settle(["c"])  # too late: a closed journal is the next start's
    assert len(list(tmp_path.iterdir())) == 2


def test_a_full_journal_refuses_records_and_counts_them(tmp_path: Path) -> None:
    """At ``max_bytes`` further records are not journaled (``journal_full``); settle marks
    are still written, and settling frees room."""
    stats = DeliveryStats()
    one = len(frame(RECORD, payload("a")))
    journal = Journal(tmp_path, one * 2 + 10, stats, segment_bytes=one)
    assert journal.append(*group("a")) == 1
    assert journal.append(*group("b")) == 1
    assert journal.append(*group("c")) == 0
    assert stats.get("journal_full") == 1
    assert journal.append(*group("c", "d")) == 0  # a group is journaled whole or not at all
    assert stats.get("journal_full") == 3
    journal.settle(["a"])  # its segment goes: room again
    assert journal.append(*group("c")) == 1
    assert journal.append([], b"") == 0
    journal.close()


def test_a_journal_that_cannot_be_written_says_so_once_and_counts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A directory that cannot be created: one stderr line, ``journal_errors`` counted, and
    nothing raises; records then live only in memory."""
    blocker = tmp_path / "file"
    blocker.write_text("")
    stats = DeliveryStats()
    journal = Journal(blocker / "journal", 1 << 20, stats)
    assert journal.append(*group("a")) == 0
    assert journal.append(*group("b")) == 0
    assert stats.get("journal_errors") == 1
    assert capsys.readouterr().err.count("cannot be written") == 1
    journal.close()


def test_a_write_that_fails_later_is_counted(tmp_path: Path) -> None:
    """A descriptor that stops working (closed under the journal) is a counted failure."""
    stats = DeliveryStats()
    journal = Journal(tmp_path, 1 << 20, stats)
    journal.append(*group("a"))
    (segment,) = journal._segments.values()
    os.close(segment.fd)
    journal.settle(["a"])
    assert stats.get("journal_errors") == 1
    segment.fd = -1
    journal.close()


def test_only_journals_whose_holders_are_gone_are_found(tmp_path: Path) -> None:
    """A live journal (this one) and another host's are never taken; a gone holder's is
    (whatever its pid), as is one a gone taker was taking, one of this host name written
    under another boot (an earlier start of this machine), and an earlier version's
    ``<host>:<pid>`` whose pid no longer runs (not one whose pid runs)."""
    live = Journal(tmp_path, 1 << 20, DeliveryStats())
    live.append(*group("a"))
    gone = dead_journal(tmp_path, ["b"]).owner
    (gone_segment,) = [p.name for p in tmp_path.glob(f"{gone}.*")]
    host = socket.gethostname()
    other_host = "elsewhere.example:kffffffffffff:abcd.1.jnl"
    earlier_boot = f"{host}:kffffffffffff:abcd.1.jnl"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    legacy_dead = f"{host}:{dead.pid}:dead.1.jnl"
    legacy_live = f"{host}:{os.getppid()}:abcd.1.jnl"
    taking = f"{host}:{KERNEL}:abcd.2.jnl@{gone}"  # a taker that is gone
    held = f"{host}:{KERNEL}:abcd.3.jnl@{live.owner}"  # being taken by a live holder
    for name in (other_host, earlier_boot, legacy_dead, legacy_live, taking, held, "x.txt"):
        (tmp_path / name).write_bytes(b"")
    (tmp_path / "bad.1.jnl").write_bytes(b"")
    found = sorted(path.name for path, _ in dead_segments(tmp_path))
    assert found == sorted([gone_segment, earlier_boot, legacy_dead, taking])
    assert dead_segments(tmp_path / "missing") == []
    live.close()


def test_two_takers_of_one_segment_one_wins_and_giving_back_restores_it(tmp_path: Path) -> None:
    """The exclusive rename: the second taker finds nothing; giving back restores the name."""
    segment = tmp_path / f"{socket.gethostname()}:1:dead.1.jnl"
    segment.write_bytes(b"")
    taken = take(segment, "me")
    assert taken is not None
    assert take(segment, "other") is None
    give_back(taken)
    assert segment.exists()


def test_a_holder_name_that_is_not_one_is_ignored() -> None:
    """File names that do not parse as ``host:kernel:token`` (or ``host:pid``) are nobody's."""
    assert Identity.parse("host:notapid:tok") is None
    assert Identity.parse("host:k12") is None
    assert Identity.parse(":kabc:tok") is None
    assert Identity.parse("host:12") is not None  # an earlier version's row


def test_recovery_is_exactly_once_and_skips_what_is_kept_or_delivered(tmp_path: Path) -> None:
    """Recovering the same records again (a recovery cut short, done again) keeps nothing
    twice: an id already kept, or delivered per the history, is left out."""
    store = Store(tmp_path)
    me = Journal(tmp_path / "journal", 1 << 20, DeliveryStats())
    dead_journal(tmp_path / "journal", ["a", "b"])
    assert recover_dead(tmp_path / "journal", store, me) == 2
    (letter,) = [x for x in store.dead_letters.letters() if x.id == "b"]
    store.record(
        letter.notification,
        NotificationResult("b", DeliveryStatus.DELIVERED, message_id="123"),
        "general",
    )
    store.forget("b")
    store.write_buffered()
    dead_journal(tmp_path / "journal", ["a", "b", "c"])
    assert recover_dead(tmp_path / "journal", store, me) == 1
    assert sorted(x.id for x in store.dead_letters.letters()) == ["a", "c"]
    me.close()


def test_a_store_that_cannot_take_them_gives_the_segment_back(tmp_path: Path) -> None:
    """A store in memory: the segment keeps its name for a later look."""
    stats = DeliveryStats()
    me = Journal(tmp_path / "journal", 1 << 20, stats)
    dead_journal(tmp_path / "journal", ["a"])
    blocked = tmp_path / "blocked"
    blocked.write_text("")
    store = Store(blocked / "store")
    assert recover_dead(tmp_path / "journal", store, me) == 0
    (segment,) = (tmp_path / "journal").iterdir()
    assert "@" not in segment.name
    me.close()


def test_a_live_process_takes_a_siblings_journal_without_a_restart(
    fake_discord: FakeDiscord, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A running handler looks for dead journals every LOOK_INTERVAL: a sibling's records
    arrive without any process starting."""
    monkeypatch.setattr(journaling, "LOOK_INTERVAL", 0.05)
    url = fake_discord.add_webhook()
    handler = DiscordHandler(
        webhooks={"general": url}, allowed_hosts=fake_discord.host, store_path=tmp_path
    )
    log = attach(handler)
    log.error("wakes the worker")
    assert handler.flush(FAILSAFE)
    identity = parse_webhook_url(url, fake_discord.host).identity
    journal = Journal(tmp_path / "journal", 1 << 20, DeliveryStats())
    data = json.loads(payload("sibling", "from a dead sibling"))
    data[0][1] = identity
    journal.append(["sibling"], json.dumps(data).encode())
    journal.close()
    deadline = time.monotonic() + FAILSAFE
    while handler.stats()["journal_recovered"] < 1 and time.monotonic() < deadline:
        log.error("wakes the worker %s", time.monotonic())
        time.sleep(0.1)
    assert handler.flush(FAILSAFE)
    deadline = time.monotonic() + FAILSAFE
    while handler.stats()["redelivered"] < 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    handler.close()
    assert "from a dead sibling" in [m.embeds[0]["title"] for m in fake_discord.messages]


def test_the_setting_and_a_custom_sink_turn_the_journal_off(
    fake_discord: FakeDiscord, tmp_path: Path
) -> None:
    """``journal=False`` writes no journal; a custom dead-letter sink has none either; with
    the journal on, a handler that delivered everything leaves no journal file at close."""
    url = fake_discord.add_webhook()
    for options, wanted in (
        ({"journal": False}, False),
        ({"dead_letters": MemoryDeadLetters()}, False),
        ({}, True),
    ):
        store = tmp_path / str(len(list(tmp_path.iterdir())))
        handler = DiscordHandler(
            webhooks={"general": url},
            allowed_hosts=fake_discord.host,
            store_path=store,
            **options,  # type: ignore[arg-type]
        )
        attach(handler).error("journaled?")
        assert handler.flush(FAILSAFE)
        worker = handler.worker
        assert worker is not None
        assert (worker.journal is not None) is wanted
        handler.close()
        assert not (store / "journal").exists() or list((store / "journal").iterdir()) == []


def _record_journal(tmp_path: Path) -> tuple[journaling.RecordJournal, DeliveryStats]:
    """A RecordJournal on a notifier (not started) with only a critical webhook."""
    from discord_logging.delivery.notifier import Notifier

    stats = DeliveryStats()
    notifier = Notifier(webhooks={"critical": WEBHOOK}, stats=stats)
    journal = Journal(tmp_path / "journal", 1 << 20, stats)
    return journaling.RecordJournal(journal, notifier, Store(tmp_path)), stats


def test_a_journal_is_refused_by_a_notifier_already_started(tmp_path: Path) -> None:
    """Lanes take the journal's hook when they start: attached later, requests would leave no
    sent mark, and a killed process's records would be posted again without the repeat note
    (rule 3). The mistake is said, not absorbed."""
    from discord_logging.delivery.notifier import Notifier

    async def attach_late() -> None:
        notifier = Notifier(webhooks={"critical": WEBHOOK})
        notifier.start()
        try:
            journal = Journal(tmp_path / "journal", 1 << 20, DeliveryStats())
            with pytest.raises(RuntimeError, match="before the notifier starts"):
                journaling.RecordJournal(journal, notifier, Store(tmp_path))
        finally:
            await notifier.aclose(0)

    asyncio.run(attach_late())


def _snap(alert_type: str, message: object = "boom") -> Any:
    record = logging.makeLogRecord({"msg": "x", "levelno": 50, "levelname": "CRITICAL"})
    return snapshot(record, alert_type, logging.Formatter())._replace(message=message)


def test_the_worker_side_journals_what_has_a_webhook_and_settles_by_outcome(
    tmp_path: Path,
) -> None:
    """A record no webhook carries is not journaled; an unencodable one is counted, never
    raised; a delivered result settles its record, a dead-lettered one waits for the store's
    write; a request answered without posting marks its records back."""
    from discord_logging.delivery.pending import Pending
    from discord_logging.notification import Notification

    rj, stats = _record_journal(tmp_path)
    kept, delivered, nowhere = _snap("critical"), _snap("critical"), _snap("general")
    rj.take([kept, delivered, nowhere])
    assert rj.journal.outstanding == 2
    assert rj.released(nowhere) is None
    rj.take([nowhere])  # nothing to journal: no write at all
    assert rj.journal.outstanding == 2
    rj.take([_snap("critical", {1, 2})])
    assert stats.get("journal_errors") == 1
    kept_id, delivered_id = rj.released(kept), rj.released(delivered)
    assert kept_id is not None
    assert delivered_id is not None

    async def outcomes() -> None:
        for record_id, status in ((kept_id, "dead_lettered"), (delivered_id, "delivered")):
            for _ in range(2):  # the second settle of one record is gathered and ignored
                rj._on_result(
                    Notification("critical", "t", "m", id=record_id),
                    NotificationResult(record_id, DeliveryStatus(status)),
                    "critical",
                )
        assert rj.journal.outstanding == 2  # gathered: written when the loop gets to it
        await asyncio.sleep(0)

    asyncio.run(outcomes())
    assert rj.journal.outstanding == 1
    back = Pending(Notification("critical", "t", "m", id=kept_id))
    rj.sent([back], True)
    rj.sent([back], False)
    (segment,) = (tmp_path / "journal").iterdir()
    (letter,) = letters_of(segment.read_bytes())[0]
    assert letter.reason is DeadLetterReason.PROCESS_ENDED  # answered: not posted
    assert rj.journal.size == segment.stat().st_size
    rj._store.on_written([kept_id])  # type: ignore[misc]
    assert rj.journal.outstanding == 0
    rj.close()


def test_repeats_folded_into_a_storm_leave_the_journal(
    fake_discord: FakeDiscord, tmp_path: Path
) -> None:
    """Storm aggregation folds a waiting repeat into the incident's count: its record is
    settled as ``aggregated``; the repeat still held is the one journaled."""
    url = fake_discord.add_webhook()
    handler = DiscordHandler(
        webhooks={"general": url},
        allowed_hosts=fake_discord.host,
        store_path=tmp_path,
        aggregate_window=60,
    )
    log = attach(handler)
    for _ in range(4):
        log.error("the same problem")
    assert handler.flush(FAILSAFE)
    worker = handler.worker
    assert worker is not None
    assert worker.journal is not None
    assert handler.stats()["aggregated"] == 2
    assert worker.journal.journal.outstanding == 0  # the held one was released by flush
    handler.close()


def test_unknown_frames_are_skipped_and_a_short_write_is_cut_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A frame of a kind this version does not know is skipped (a newer writer's); a write
    a full disk cut short is cut back to the last whole frame and counted as ``journal_full``,
    and the journal goes on (docs/architecture.md, "A full disk")."""
    letters, bad = letters_of(frame(ord("z"), b"future") + frame(RECORD, payload("a")))
    assert ([x.id for x in letters], bad) == (["a"], 0)
    stats = DeliveryStats()
    journal = Journal(tmp_path, 1 << 20, stats)
    assert journal.append(*group("a")) == 1
    real = os.write
    monkeypatch.setattr(os, "write", lambda fd, data: real(fd, data[: len(data) - 1]))
    assert journal.append(*group("b")) == 0
    assert stats.get("journal_full") == 1
    monkeypatch.undo()
    assert journal.append(*group("c")) == 1
    (segment,) = tmp_path.glob("*.jnl")
    letters, bad = letters_of(segment.read_bytes())
    assert ([x.id for x in letters], bad) == (["a", "c"], 0)  # no torn tail hides "c"
    assert stats.get("journal_errors") == 0
    journal._fail(OSError("broken"))  # any other failure: counted, the journal is off
    assert stats.get("journal_errors") == 1
    journal.close()


def test_a_segment_taken_by_another_or_unreadable_is_left_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A segment another process renamed first is skipped; one that cannot be read is
    counted and given back for a later look."""
    stats = DeliveryStats()
    me = Journal(tmp_path / "journal", 1 << 20, stats)
    dead_journal(tmp_path / "journal", ["a"])
    store = Store(tmp_path)
    monkeypatch.setattr(journaling, "take", lambda path, me: None)
    assert recover_dead(tmp_path / "journal", store, me) == 0
    monkeypatch.undo()

    def unreadable(self: Path) -> bytes:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Path, "read_bytes", unreadable)
    assert recover_dead(tmp_path / "journal", store, me) == 0
    monkeypatch.undo()
    assert stats.get("journal_errors") == 1
    (segment,) = (tmp_path / "journal").iterdir()
    assert "@" not in segment.name
    assert recover_dead(tmp_path / "journal", store, me) == 1
    me.close()


def test_a_settle_outside_the_loop_is_written_at_once(tmp_path: Path) -> None:
    """Outside an event loop (never expected) a settle mark is written at once."""
    rj, _ = _record_journal(tmp_path)
    snap = _snap("critical")
    rj.take([snap])
    rj.folded(snap)
    rj.folded(snap)  # already settled: nothing more
    assert rj.journal.outstanding == 0
    rj.close()


def test_store_failures_around_the_journal_never_raise(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A journal that fails when told of written letters is counted, the write stands; a
    store that fails while taking a dead journal's letters gives None (tried again later)."""
    from discord_logging.store import DurableDeadLetters

    store = Store(tmp_path)

    def broken(ids: list[str]) -> None:
        raise RuntimeError("journal gone")

    store.on_written = broken
    (letter,) = letters_of(frame(RECORD, payload("a")))[0]
    store.dead_letters.add(letter)
    store.close()  # stops the writer and writes what is buffered
    assert store.stats.get("journal_errors") == 1
    assert [x.id for x in Store(tmp_path).dead_letters.letters()] == ["a"]

    def corrupt(*args: object) -> int:
        raise ValueError("damaged")

    monkeypatch.setattr(DurableDeadLetters, "adopt", corrupt)
    assert store.adopt([letter]) is None
    assert "cannot be used" in capsys.readouterr().err


def test_a_journal_that_cannot_be_built_leaves_delivery_working(
    fake_discord: FakeDiscord, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Building the journal fails (a bug, an unusable directory): counted as
    ``journal_errors``; records are still delivered, only in memory meanwhile."""
    import discord_logging.delivery.journaling as journaling

    def failing(*args: object) -> None:
        raise OSError("no journal here")

    # The handler imports it on the worker thread, from the module, as the worker starts.
    monkeypatch.setattr(journaling, "early_journal", failing)
    url = fake_discord.add_webhook()
    handler = DiscordHandler(
        webhooks={"general": url}, allowed_hosts=fake_discord.host, store_path=tmp_path
    )
    attach(handler).error("delivered anyway")
    assert handler.flush(FAILSAFE)
    assert handler.stats()["journal_errors"] == 1
    assert handler.stats()["delivered"] == 1
    handler.close()


def test_any_text_a_record_carries_is_recovered_as_logged(tmp_path: Path) -> None:
    """Non-ASCII text and a lone surrogate (a mis-decoded file name) survive the journal."""
    rj, _ = _record_journal(tmp_path)
    rj.take([_snap("critical", "café \udc80 ☕")])
    (segment,) = (tmp_path / "journal").iterdir()
    (letter,) = letters_of(segment.read_bytes())[0]
    assert letter.notification.title == "café \udc80 ☕"
    rj.close()


def test_a_look_that_fails_is_counted_and_the_next_one_tries_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A look for dead journals that raises (a directory it may not read) is counted as
    ``journal_errors`` and never ends the worker's loop; the next look runs as usual."""
    rj, stats = _record_journal(tmp_path)

    def unreadable(directory: Path) -> list[object]:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(journaling, "dead_segments", unreadable)

    async def look() -> None:
        rj.look_for_dead()
        rj.look_for_dead()  # one look at a time
        assert rj._look_task is not None
        await rj._look_task

    asyncio.run(look())
    assert stats.get("journal_errors") == 1
    assert rj._looking is False
    rj.close()


# A process that journals ``count`` records in groups of 500, as a worker does, and is gone
# without its exit (os._exit): its journal is a dead process's.
DEAD_WRITER = """
import json, logging, os, sys
from pathlib import Path
from discord_logging.capture.snapshot import snapshot
from discord_logging.stats import DeliveryStats
from discord_logging.store.journal import Journal
directory, destination, count = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
record = logging.makeLogRecord({"msg": "boom", "levelno": 40, "levelname": "ERROR"})
snap = snapshot(record, "error", logging.Formatter())
journal = Journal(directory, 1 << 30, DeliveryStats())
for start in range(0, count, 500):
    rows = [[f"r{i}", destination, "general", snap] for i in range(start, start + 500)]
    journal.append([row[0] for row in rows], json.dumps(rows).encode())
os._exit(1)
"""
SHORT_SCRIPT = """
import time
handler = make_handler()
log.addHandler(handler)
log.error("the last line")
print(time.time(), flush=True)
"""


def test_a_short_script_beside_a_large_dead_journal_leaves_the_rest_for_the_next_start(
    fake_discord: FakeDiscord, tmp_path: Path
) -> None:
    """A script with close_timeout=1 starts beside a dead process's 60,000-record journal,
    logs one line and ends. Its worker takes the journal in by chunks (a segment per call,
    500 letters per write) and its close stops between two: the script ends (within the
    failsafe) with what it did not take still in the journal, nothing lost and nothing kept
    twice: journal and store hold all 60,000 between them (before: the close waited for the
    whole journal, 10-15 s, and took it all). How soon it ends is measured, not asserted."""
    store = tmp_path / "store"
    url = fake_discord.add_webhook(host="localhost")
    destination = destination_of(url)
    count = 60_000
    writer = subprocess.run(
        [sys.executable, "-c", DEAD_WRITER, str(store / "journal"), destination, str(count)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert writer.returncode == 1, writer.stderr  # ended by os._exit, its journal left
    env = script_env(fake_discord, url, store, close_timeout=1.0)
    started = time.monotonic()
    done = run_script(SHORT_SCRIPT, env, tmp_path)
    ended = time.time()
    assert done.returncode == 0, done.stderr
    print(f"exit {ended - float(done.stdout.split()[0]):.2f} s after the last line "
          f"({time.monotonic() - started:.2f} s in all)")  # fmt: skip
    left: set[str] = set()
    for path, _ in dead_segments(store / "journal"):
        letters, _torn = letters_of(path.read_bytes())
        left |= {letter.id for letter in letters}
    opened = Store(store)
    kept = {letter.id for letter in opened.dead_letters.letters()}
    opened.close()
    assert left, "the whole journal was taken in before the script could end"
    assert not left & kept
    journal = {f"r{n}" for n in range(count)}
    assert left | kept >= journal  # none of the dead journal's records lost
    # The script's own line: delivered, or kept for the next start when its close came first
    # (a busy machine: the close stops the worker while it takes the journal in).
    own = kept - journal
    assert len(own) <= 1, own
    delivered = "the last line" in [m.embeds[0]["title"] for m in fake_discord.messages]
    assert own or delivered
