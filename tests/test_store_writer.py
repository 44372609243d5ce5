"""The store's life cycle: lazy opening, the writer thread, close, transient errors, recovery."""

from __future__ import annotations

import errno
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import diskcache
import pytest
from letterkit import DESTINATION
from waiting import FAILSAFE

from discord_logging.deadletters import DeadLetter, DeadLetterReason
from discord_logging.notification import Notification
from discord_logging.store import (
    Claim,
    Store,
    _full,
    claim_row,
    holds,
    open_cache,
    taken_over,
)
from discord_logging.store._holders import HOST, KERNEL, Holder, Liveness
from discord_logging.store.durable_letters import DurableDeadLetters

EPOCH = time.time() - 3600  # letters died an hour ago: well inside any retention


def letter(i: int = 0, reason: DeadLetterReason = DeadLetterReason.RETRIES_EXHAUSTED) -> DeadLetter:
    n = Notification(alert_type="error", title=f"record {i}", message=f"message {i}")
    return DeadLetter(
        n, "general", destination=DESTINATION, reason=reason, attempts=1, dead_at=EPOCH + i
    )


def on_disk(path: Path) -> list[str]:
    """Titles a fresh Store reads from ``path``."""
    store = Store(path)
    try:
        return [x.notification.title for x in store.dead_letters.letters()]
    finally:
        store.close()


def claims(path: Path) -> diskcache.Cache:
    """The store's index at ``path``, where redelivery claims are kept, opened as another
    process sharing the store opens it (close it when done)."""
    return open_cache(path / "deadletters-index")


def wait_for(condition: Any, seconds: float = FAILSAFE) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def test_constructing_a_store_touches_nothing_on_disk(tmp_path: Path) -> None:
    """A Store built on a path creates nothing there until it is used (the fork hook's case)."""
    path = tmp_path / "deep" / "store"
    store = Store(path)
    assert store.dead_letters is not None
    assert not (tmp_path / "deep").exists()
    assert len(store.dead_letters) == 0  # first use opens it
    assert (path / "deadletters-index" / "cache.db").exists()
    store.close()


def test_opening_is_once_under_concurrent_first_use(tmp_path: Path) -> None:
    """Threads using a fresh Store at once open it once: one History, one dead-letter sink."""
    store = Store(tmp_path)
    seen: list[object] = []
    barrier = threading.Barrier(8)

    def use() -> None:
        barrier.wait()
        seen.append(store.durable)
        store.release_thread()

    threads = [threading.Thread(target=use) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({id(x) for x in seen}) == 1
    assert seen[0] is not None
    store.close()


@pytest.mark.slow  # a real process
@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # fork() with threads running
def test_forks_during_heavy_store_writes_never_hang(tmp_path: Path) -> None:
    """200 forked children each build a Store while a parent thread writes the store hard;
    every child exits promptly (the store opens nothing until used)."""
    parent = Store(tmp_path)
    durable = parent.durable
    assert durable is not None
    stop = threading.Event()

    def write_hard() -> None:
        i = 0
        while not stop.is_set():
            durable.add_many([letter(i + k) for k in range(20)])
            i += 20
        parent.release_thread()

    writer = threading.Thread(target=write_hard)
    writer.start()
    children: list[int] = []
    waiting: set[int] = set()
    try:
        for _ in range(200):
            pid = os.fork()
            if pid == 0:  # the child: what the handler's fork hook does, then exit
                try:
                    Store(tmp_path)
                finally:
                    os._exit(0)
            children.append(pid)
        deadline = time.monotonic() + 60
        waiting.update(children)
        while waiting and time.monotonic() < deadline:
            for pid in list(waiting):
                if os.waitpid(pid, os.WNOHANG)[0] == pid:
                    waiting.discard(pid)
            time.sleep(0.005)
    finally:
        stop.set()
        writer.join()
        for pid in waiting:  # hung: end them so the test fails instead of hanging
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        parent.close()
    assert not waiting, f"{len(waiting)} of 200 forked children hung"


def test_the_writer_commits_without_closing_the_store(tmp_path: Path) -> None:
    """After the writer's first batch the store is not marked closed (reads keep their
    connections instead of reopening SQLite on every call)."""
    store = Store(tmp_path)
    store.dead_letters.add(letter(1))
    assert wait_for(lambda: on_disk(tmp_path) == ["record 1"])
    assert not store.closed
    store.close()
    assert store.closed


def test_remove_is_buffered_and_never_redelivered_meanwhile(tmp_path: Path) -> None:
    """remove() writes nothing on the caller's thread; until the writer commits it, the
    letter is not handed out for redelivery. Reaches Store._stop_writer: holding the writer
    back so that writes stay buffered is nothing a public call does."""
    store = Store(tmp_path)
    sink = store.dead_letters
    sink.add(letter(1))
    sink.add(letter(2))
    sink.sync()
    store._stop_writer()  # hold the writer back: what is buffered stays buffered
    durable = store.durable
    assert durable is not None
    first = durable.letters()[0]
    sink.remove(first.id)
    assert durable.get(first.id) is not None  # still on disk: not written inline
    assert [x.notification.title for x in sink.retryable(DESTINATION, 10)] == ["record 2"]
    sink.sync()
    assert durable.get(first.id) is None
    store.close()


def test_close_starts_no_thread(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Where threads cannot start (Python 3.12.0-3.12.2 at exit), adding letters, recording
    and close() neither raise nor lose anything: close writes inline."""
    started: list[str] = []

    def refuse(self: threading.Thread) -> None:
        started.append(self.name)
        raise RuntimeError("can't create new thread at interpreter shutdown")

    monkeypatch.setattr(threading.Thread, "start", refuse)
    store = Store(tmp_path)
    store.dead_letters.add(letter(1))
    store.dead_letters.add(letter(2))
    calls = len(started)
    store.close()
    assert len(started) == calls  # close() itself never tries
    monkeypatch.undo()
    assert on_disk(tmp_path) == ["record 1", "record 2"]


def test_close_stops_the_writer_thread(tmp_path: Path) -> None:
    """close() ends the writer it started earlier (which closed its own connections)."""
    store = Store(tmp_path)
    before = set(threading.enumerate())
    store.dead_letters.add(letter(1))
    (writer,) = [
        t for t in threading.enumerate() if t not in before and t.name == "discord-logging-store"
    ]
    assert writer.is_alive()
    store.close()
    assert not writer.is_alive()
    assert on_disk(tmp_path) == ["record 1"]


def test_a_transient_error_is_retried_not_a_fallback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A busy store (diskcache.Timeout, 'database is locked') is tried again: no switch to
    memory, nothing said, the letter lands on disk. Patches _write_buffer.TRANSIENT_BACKOFF
    only to skip the backoff's sleeps: no public setting tunes it."""
    store = Store(tmp_path)
    durable = store.durable
    assert durable is not None
    real = durable.write
    failures = [diskcache.Timeout(), sqlite3.OperationalError("database is locked")]

    def busy(*args: Any) -> None:
        if failures:
            raise failures.pop(0)
        real(*args)

    monkeypatch.setattr(durable, "write", busy)
    monkeypatch.setattr("discord_logging.store._write_buffer.TRANSIENT_BACKOFF", (0.0, 0.0, 0.0))
    store.dead_letters.add(letter(1))
    store.dead_letters.sync()
    assert not store.degraded
    assert store.memory_only == 0
    assert "cannot be used" not in capsys.readouterr().err
    store.close()
    assert on_disk(tmp_path) == ["record 1"]


def test_the_disk_is_tried_again_and_memory_letters_move_back(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """After a failure the letters live in memory (counted by memory_only); once the disk
    works again they move back to it, each switch said once on stderr, and only then are
    they reported written (the journal settles their records then)."""
    store = Store(tmp_path)
    written: list[str] = []
    store.on_written = written.extend
    durable = store.durable
    assert durable is not None
    real = DurableDeadLetters.write

    def full(*args: Any) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(DurableDeadLetters, "write", full)
    store.dead_letters.add(letter(1))
    store.dead_letters.sync()
    store.dead_letters.add(letter(2))
    assert store.degraded
    assert store.memory_only == 2
    assert not store.try_disk(time.monotonic())  # too soon: at most every 30 s
    assert not store.try_disk(time.monotonic() + 31)  # still full
    assert written == []
    monkeypatch.setattr(DurableDeadLetters, "write", real)
    assert store.try_disk(time.monotonic() + 62)
    assert len(written) == 2
    assert not store.degraded
    assert store.memory_only == 0
    err = capsys.readouterr().err
    assert err.count("is full") == 1  # a full disk is said as such (A full disk)
    assert err.count("works again; 2 dead letters") == 1
    store.close()
    assert on_disk(tmp_path) == ["record 1", "record 2"]


def test_close_tries_a_busy_store_once_more_before_letters_are_lost(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A store that fell back to memory because it stayed busy past the retries (SQLite's
    lock held by other processes) writes its memory letters to disk at close once it is free,
    even within 30 s of the last try: letters that would die with the process are kept.
    Patches _write_buffer.TRANSIENT_BACKOFF only to skip the backoff's sleeps: no public
    setting tunes it."""
    store = Store(tmp_path)
    assert store.durable is not None
    real = DurableDeadLetters.write
    monkeypatch.setattr("discord_logging.store._write_buffer.TRANSIENT_BACKOFF", (0.0, 0.0, 0.0))

    def busy(*args: Any) -> None:
        raise diskcache.Timeout()

    monkeypatch.setattr(DurableDeadLetters, "write", busy)
    store.dead_letters.add(letter(1))
    store.dead_letters.sync()
    assert store.degraded
    assert store.memory_only == 1
    monkeypatch.setattr(DurableDeadLetters, "write", real)
    store.close()
    assert store.memory_only == 0
    assert (
        "works again; 1 dead letter kept in memory meanwhile was moved" in capsys.readouterr().err
    )
    assert on_disk(tmp_path) == ["record 1"]


def test_renew_extends_only_this_process_claims(tmp_path: Path) -> None:
    """renew() pushes out the lease of claims this process holds; another process's claim
    (and an unclaimed letter) is left as it was."""
    store = Store(tmp_path)
    sink = store.dead_letters
    for i in range(3):
        sink.add(letter(i))
    sink.sync()
    durable = store.durable
    assert durable is not None
    mine, theirs, free = (x.id for x in durable.letters())
    assert durable.claim(mine, lease=5)
    index = claims(tmp_path)
    index.set(f"claim:{theirs}", os.getppid(), expire=5)  # a live process holds it
    before = {i: index.get(f"claim:{i}", expire_time=True) for i in (mine, theirs)}
    sink.renew([mine, theirs, free])
    sink.sync()
    after = {i: index.get(f"claim:{i}", expire_time=True) for i in (mine, theirs)}
    assert after[mine][0][1] > before[mine][0][1] + 60  # its lease: the full 120 s from now
    assert after[theirs] == before[theirs]
    assert index.get(f"claim:{free}") is None
    index.close()
    store.close()


def test_a_failed_redelivery_releases_its_claim(tmp_path: Path) -> None:
    """A letter re-added after a failed redelivery is claimable again (its claim released)."""
    store = Store(tmp_path)
    sink = store.dead_letters
    sink.add(letter(1))
    sink.sync()
    (taken,) = sink.retryable(DESTINATION, 10)
    assert sink.retryable(DESTINATION, 10) == []  # claimed: queued in this process
    sink.add(taken)  # the redelivery failed: the same letter again
    sink.sync()
    assert [x.id for x in sink.retryable(DESTINATION, 10)] == [taken.id]
    store.close()


def test_memory_only_counts_what_would_be_lost(tmp_path: Path) -> None:
    """A store that cannot be opened keeps letters in memory, and says how many."""
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    store = Store(blocker / "store")
    store.dead_letters.add(letter(1))
    store.dead_letters.add(letter(2))
    assert store.memory_only == 2
    store.close()


def test_a_letter_not_written_yet_is_retryable_and_keeps_its_claim(tmp_path: Path) -> None:
    """A retryable letter still waiting for the writer is handed out at once (claimed); the
    write that follows keeps that claim, so it is not handed out twice. Reaches
    Store._stop_writer: holding the writer back so that the letter stays buffered is nothing
    a public call does."""
    store = Store(tmp_path)
    store._stop_writer()  # hold the writer back: the letter stays buffered
    sink = store.dead_letters
    sink.add(letter(1))
    (taken,) = sink.retryable(DESTINATION, 10)
    assert sink.retryable(DESTINATION, 10) == []  # claimed while still buffered
    sink.sync()
    assert sink.retryable(DESTINATION, 10) == []  # the write kept the claim
    assert store.durable is not None
    index = claims(tmp_path)
    assert index.get(f"claim:{taken.id}")[0] == store.durable.holder
    index.close()
    store.close()


def test_a_letter_delivered_before_its_first_write_is_not_remembered_as_claimed(
    tmp_path: Path,
) -> None:
    """A letter handed out while buffered and delivered before the writer wrote it leaves
    nothing behind in the buffer's claims: a long-lived process does not grow by one id per
    such letter. Reaches Store._stop_writer (holding the writer back, which no public call
    does) and Store._buffer: the claims it must not keep are internal state with no public
    view."""
    store = Store(tmp_path)
    store._stop_writer()
    sink = store.dead_letters
    sink.add(letter(1))
    (taken,) = sink.retryable(DESTINATION, 10)
    sink.remove(taken.id)  # delivered
    sink.sync()
    assert store._buffer.claimed() == frozenset()
    assert len(sink) == 0
    store.close()


def test_a_redelivery_read_waits_for_the_write_under_way_and_finds_its_letters_claimed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A lane's read on the store thread while the writer is between two chunks of a write
    waits for the whole write (they take turns: the event loop then competes for the GIL with
    one of them, not two), and every letter it is handed, written or still buffered, is
    claimed on disk: no other process finds one unclaimed and sends it a second time.
    Reaches Store._stop_writer (so the write runs inline, which no public call arranges) and
    wraps DurableDeadLetters._write_chunk: the moment between two chunks of one write has no
    public hook."""
    chunk = 20  # two chunks of one write, not two writes (the buffer's batch is 500)
    monkeypatch.setattr(_full, "WRITE_CHUNK", chunk)
    store = Store(tmp_path)
    store._stop_writer()  # the write below runs inline, chunk by chunk
    sink = store.dead_letters
    for i in range(2 * chunk):
        sink.add(letter(i))
    taken: list[DeadLetter] = []
    reader = threading.Thread(target=lambda: taken.extend(sink.retryable(DESTINATION, 2 * chunk)))
    write_chunk = DurableDeadLetters._write_chunk

    def chunk_then_redelivery(
        self: DurableDeadLetters, letters: list[DeadLetter], keep: Any
    ) -> None:
        write_chunk(self, letters, keep)
        if not reader.is_alive() and not taken:  # between the first and the second chunk
            reader.start()
            reader.join(0.1)
            assert reader.is_alive(), "the read did not wait for the write under way"

    monkeypatch.setattr(DurableDeadLetters, "_write_chunk", chunk_then_redelivery)
    sink.sync()
    reader.join(FAILSAFE)
    assert len(taken) == 2 * chunk
    assert store.durable is not None
    index = claims(tmp_path)
    me = store.durable.holder
    unclaimed = [x.id for x in taken if index.get(f"claim:{x.id}")[0] != me]
    index.close()
    assert unclaimed == []
    store.close()


def dead_holder(store: Path) -> str:
    """The identity of a holder whose process ended (its lock file stays, unlocked)."""
    code = (
        "import sys; from pathlib import Path; from discord_logging.store._holders import Holder;"
        " print(Holder(Path(sys.argv[1])).identity)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(store)], capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


def test_a_claim_holds_while_its_lease_runs_and_its_holder_is_alive(tmp_path: Path) -> None:
    """One liveness rule: a claim holds within its lease while its holder's lock is held (a
    holder of this kernel), or within its lease alone for a holder no lock can tell about
    (another kernel's: a store on a network volume; an earlier version's ``<host>:<pid>``).
    A released or dead holder's claim, an expired lease, a row without one: taken over."""
    live = Holder(tmp_path)
    released = Holder(tmp_path)
    released.release()
    dead = dead_holder(tmp_path)
    now = time.time()
    seen = Liveness(tmp_path)
    assert holds(claim_row(live.identity, now, 5), now, seen)
    assert not holds([live.identity, now - 1], now, seen)  # its lease ended
    assert not holds([released.identity, now + 5], now, seen)
    assert not holds([dead, now + 5], now, seen)
    other_kernel = f"{HOST}:kffffffffffff:abcdef"
    assert KERNEL != "kffffffffffff"
    assert holds([other_kernel, now + 5], now, seen)
    assert not holds([other_kernel, now - 1], now, seen)
    assert holds([f"{HOST}:1", now + 5], now, seen)  # an earlier version's row: its lease
    assert not holds(f"{HOST}:{os.getpid()}", now, seen)  # no lease at all
    assert not holds(os.getpid(), now, seen)
    assert not holds(None, now, seen)
    assert taken_over([dead, now + 5], now, seen)
    assert taken_over([other_kernel, now - 1], now, seen)
    assert not taken_over(claim_row(live.identity, now, 5), now, seen)
    assert not taken_over(None, now, seen)
    live.release()


@pytest.mark.slow  # a real process
def test_a_letter_its_dead_holder_claimed_is_taken_over_as_uncertain(tmp_path: Path) -> None:
    """Letters whose claims name a process that has died (SIGKILLed while redelivering them)
    are handed out as ``uncertain``, by a lane's look and by the operator's claim: that
    holder may have had them in flight (rule 3); a letter nobody claimed goes as it was
    kept, and one this process now holds cannot be claimed again."""
    store = Store(tmp_path)
    sink = store.dead_letters
    for i in range(4):
        sink.add(letter(i))
    sink.sync()
    durable = store.durable
    assert durable is not None
    first, second, third, free = (x.id for x in durable.letters())
    dead = dead_holder(tmp_path)
    index = claims(tmp_path)
    for letter_id in (first, second, third):
        index.set(f"claim:{letter_id}", [dead, time.time() + 99])
    index.close()
    taken = sink.retryable(DESTINATION, 2)
    assert [(x.id, x.reason) for x in taken] == [
        (first, DeadLetterReason.UNCERTAIN),
        (second, DeadLetterReason.UNCERTAIN),
    ]
    assert durable.claim(third) is Claim.TAKEN_OVER
    assert durable.claim(free) is Claim.FREE
    assert durable.claim(free) is None
    store.close()


def test_a_delivered_letter_is_removed_at_close_once_a_full_disk_has_room(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The disk filled up after a letter was delivered: its removal waits in memory. When the
    disk has room again by close, close writes the removal (the next run would post the letter
    again, unmarked); when it still has none, one stderr line says the next run may."""
    import errno

    for still_full in (False, True):
        path = tmp_path / f"store-{still_full}"
        store = Store(path)
        kept = letter(1)
        store.dead_letters.add(kept)
        store.dead_letters.sync()
        real = DurableDeadLetters.write

        def full(*args: Any, **kwargs: Any) -> None:
            raise OSError(errno.ENOSPC, "No space left on device")

        monkeypatch.setattr(DurableDeadLetters, "write", full)
        store.dead_letters.remove(kept.id)  # delivered
        store.dead_letters.sync()
        assert store.degraded
        if not still_full:
            monkeypatch.setattr(DurableDeadLetters, "write", real)  # room again
        store.close()
        monkeypatch.setattr(DurableDeadLetters, "write", real)
        again = Store(path)
        left = [x.id for x in again.dead_letters.letters()]
        again.close()
        err = capsys.readouterr().err
        if still_full:
            assert left == [kept.id]
            assert "1 delivered letter could not be removed" in err
        else:
            assert left == []
            assert "could not be removed" not in err


def test_the_writer_ends_when_idle_and_the_next_write_starts_another(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A process at rest keeps no writer thread: it ends once idle, and a letter buffered
    after that is written by a new one (never stranded in the buffer)."""
    from discord_logging.store import _writer

    monkeypatch.setattr(_writer, "IDLE_END", 0.05)

    def writers() -> list[threading.Thread]:
        return [t for t in threading.enumerate() if t.name == "discord-logging-store"]

    store = Store(tmp_path / "store")
    try:
        durable = store.durable
        assert durable is not None
        store.dead_letters.add(letter(1))
        assert wait_for(lambda: len(durable) == 1)  # written by the first writer
        assert wait_for(lambda: writers() == [])
        store.dead_letters.add(letter(2))
        assert wait_for(lambda: len(durable) == 2)  # written by another one
    finally:
        store.close()


# The store thread is alive at the fork on purpose: Python 3.12+ warns about exactly that.
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_the_store_thread_stays_after_a_fork_of_its_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A process that forked while its store thread ran does not let that thread end when
    idle (closing the parent's last connection to a WAL file while a child shares SQLite's
    in-memory state of it lets SQLite remove the WAL under the child: fleet.py's fork rows
    found "file is not a database" and lost letters); it ends when the store closes."""
    from discord_logging.store import _writer

    store = Store(tmp_path / "store")
    try:
        durable = store.durable
        assert durable is not None
        store.dead_letters.add(letter(1))  # the thread starts and opens its connections
        assert wait_for(lambda: len(durable) == 1)
        resume = store.thread.park(FAILSAFE)  # held alive (it idles 2 s), between two steps
        (thread,) = [t for t in threading.enumerate() if t.name == "discord-logging-store"]
        pid = os.fork()
        if pid == 0:
            os._exit(0)
        os.waitpid(pid, 0)
        monkeypatch.setattr(_writer, "IDLE_END", 0.05)
        resume()
        thread.join(0.5)  # ten idle periods
        assert thread.is_alive()
    finally:
        store.close()
    assert not thread.is_alive()


@pytest.mark.parametrize(("near_full", "transactions"), [(False, 2), (True, 50)])
def test_letters_are_committed_in_large_transactions_and_small_ones_near_a_full_volume(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, near_full: bool, transactions: int
) -> None:
    """One write of 1,000 letters is 2 transactions (a commit's fixed cost is paid per 500
    letters), and so is their removal; 50 of 20 letters each once the volume has less than
    16 MiB free: a write that meets the end of the volume then keeps all but the last few of
    what fits, and a removal's WAL pages fit in the room kept for it
    (docs/architecture.md, "A full disk"). The volume's free space is what the rule reads;
    it is set here through store._full.near_full (a real small volume is
    tests/test_disk_full.py's)."""
    monkeypatch.setattr(_full, "near_full", lambda root: near_full)
    store = Store(tmp_path)
    durable = store.durable
    assert durable is not None
    sizes: list[int] = []
    write_chunk = DurableDeadLetters._write_chunk

    def counted(self: DurableDeadLetters, letters: list[DeadLetter], keep: Any) -> None:
        sizes.append(len(letters))
        write_chunk(self, letters, keep)

    monkeypatch.setattr(DurableDeadLetters, "_write_chunk", counted)
    written = [letter(i) for i in range(1000)]
    durable.write(written, ())
    assert len(sizes) == transactions
    assert sum(sizes) == 1000
    assert len(durable) == 1000
    removals: list[int] = []
    forget = DurableDeadLetters._forget

    def forgetting(self: DurableDeadLetters, ids: list[str], **kwargs: Any) -> None:
        removals.append(len(ids))
        forget(self, ids, **kwargs)

    monkeypatch.setattr(DurableDeadLetters, "_forget", forgetting)
    durable.write((), [x.id for x in written])
    assert len(removals) == transactions
    assert len(durable) == 0
    store.close()
