"""Fault matrix, shutdown under load: close() while the worker is behind (a stalled or slow
disk, a deep hand-off). Every logger call must end delivered, kept, or counted as dropped,
and a stalled sink must never block the caller."""

from __future__ import annotations

import asyncio
import logging
import threading
import time

import pytest

from discord_logging.deadletters import DeadLetter, MemoryDeadLetters
from discord_logging.delivery.notifier import Notifier
from discord_logging.delivery.worker import Worker
from discord_logging.testing import FakeDiscord

from .faultkit import (
    DEADLINE,
    TimedLogger,
    assert_books_balance,
    make_handler,
    marked,
    message_text,
    wait_until,
    webhook_id,
)

SLACK = 0.5


class StalledDeadLetters(MemoryDeadLetters):
    """A dead-letter sink whose writes hang until ``release`` (an NFS or disk stall)."""

    def __init__(self) -> None:
        super().__init__()
        self.stalled = threading.Event()  # set once a write is hanging
        self._gate = threading.Event()

    def release(self) -> None:
        """End the stall."""
        self._gate.set()

    def add(self, letter: DeadLetter) -> None:
        if not self._gate.is_set():
            self.stalled.set()
            self._gate.wait(DEADLINE)
        super().add(letter)


def test_stalled_dead_letter_sink_never_blocks_the_caller(fake: FakeDiscord) -> None:
    """A hanging dead-letter write stalls the worker, never the caller; all kept after the stall."""
    gone = fake.add_webhook()
    fake.delete_webhook(webhook_id(gone))  # its records become dead letters (never retried)
    sink = StalledDeadLetters()
    handler = make_handler(
        {"general": gone, "error": fake.add_webhook()},
        fake.host,
        queue_size=5000,
        dead_letters=sink,
    )
    log = TimedLogger(handler)
    log.info("dead rec#0#")
    assert sink.stalled.wait(DEADLINE)
    for i in range(1, 1000):  # the worker is stuck in the sink meanwhile
        log.info("dead rec#%d#", i)
        log.error("live rec#%d#", i)
    sink.release()
    handler.flush(DEADLINE)  # False by contract: the letters are in memory, not durable
    wait_until(lambda: handler.stats()["queue_depth"] == 0)
    handler.close()
    stats = handler.stats()
    assert_books_balance(stats, log.calls)
    assert stats["dead_lettered_by_reason"] == {"webhook_disabled": 1000}
    assert marked(" ".join(x.notification.message for x in sink.letters())) == set(range(1000))
    assert marked(message_text(fake)) == set(range(1, 1000))
    log.assert_never_blocked()


def test_close_accounts_for_every_record_in_a_deep_hand_off(fake: FakeDiscord) -> None:
    """close() with 15,000 records still handed over: every logger call settled or counted."""
    sink = StalledDeadLetters()
    handler = make_handler(
        {"general": fake.add_webhook()},
        fake.host,
        queue_size=1,
        close_timeout=0.5,
        dead_letters=sink,
        memory_max_records=20_000,  # the whole hand-off is held (the bound: test_flood_memory)
    )
    log = TimedLogger(handler)
    log.error("first")
    for i in range(15_000):
        log.error("deep rec#%d#", i)
        if i == 100:
            assert sink.stalled.wait(DEADLINE)  # the worker is stuck from here on
    threading.Timer(0.1, sink.release).start()  # the stall ends just after close() began
    handler.close()
    worker = handler.worker
    assert worker is not None
    wait_until(lambda: not worker.thread.is_alive())
    assert_books_balance(handler.stats(), log.calls, dropped_ok=("closed",))


@pytest.mark.long
def test_close_after_a_deep_burst_on_the_real_store(fake: FakeDiscord) -> None:
    """close() right after a 20,000-record burst (real store): delivery stops at the deadline,
    then every record is written to the store before close returns (persisting 20,000
    records takes a few seconds more; close never returns with the worker still writing)."""
    close_timeout = 1.0
    handler = make_handler(
        {"general": fake.add_webhook()},
        fake.host,
        queue_size=100,
        close_timeout=close_timeout,
        memory_max_records=30_000,  # all 20,000 are accepted (the bound: test_flood_memory)
    )
    log = TimedLogger(handler)
    for i in range(20_000):
        log.error("deep rec#%d#", i)
    worker = handler.worker
    assert worker is not None
    started = time.monotonic()
    handler.close()
    took = time.monotonic() - started
    still_running = worker.thread.is_alive()  # close() returned with the worker still busy
    wait_until(lambda: not worker.thread.is_alive(), timeout=60)
    stats = handler.stats()
    assert_books_balance(stats, log.calls, dropped_ok=("closed",))
    print(f"close() with 20,000 records to persist took {took:.1f} s")
    assert took < close_timeout + 30  # the bounded wait for persisting, see Worker.stop
    assert not still_running


def test_flush_racing_close_never_raises(
    fake: FakeDiscord, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A flush() waiting in one thread while another closes the handler returns, never raises."""

    async def still_waiting(
        self: Notifier, timeout: float | None = None, *, deadline: float | None = None
    ) -> bool:
        await asyncio.sleep(3600)  # the lanes are still busy when the loop ends
        return True

    monkeypatch.setattr(Notifier, "flush", still_waiting)
    handler = make_handler({"general": fake.add_webhook()}, fake.host, close_timeout=0.2)
    log = TimedLogger(handler)
    log.error("one")
    outcome: dict[str, object] = {}

    def flush_in_a_thread() -> None:
        try:
            outcome["returned"] = handler.flush(DEADLINE)
        except BaseException as exc:  # what the application would see
            outcome["raised"] = exc

    flusher = threading.Thread(target=flush_in_a_thread)
    flusher.start()
    time.sleep(0.1)  # the flush is waiting on the worker's loop
    handler.close()
    flusher.join(DEADLINE)
    assert "raised" not in outcome, repr(outcome.get("raised"))
    # The close cut the flush short; by then the record was delivered (or it would be kept
    # in the durable store), so "everything emitted was delivered or kept" holds.
    assert outcome["returned"] is True
    assert handler.stats()["delivered"] + len(handler.dead_letters) == 1


def _workers_alive() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "discord-logging" and t.is_alive()]


def test_emits_hammering_close_are_handed_over_or_counted(fake: FakeDiscord) -> None:
    """Threads logging while close() runs: every call is emitted or dropped as "closed"
    (none stranded in the hand-off), and no worker thread is left."""
    before = _workers_alive()
    handler = make_handler({"general": fake.add_webhook()}, fake.host, close_timeout=0.5)
    logger = logging.getLogger("hammer")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    stop = threading.Event()
    calls = [0] * 4

    def hammer(n: int) -> None:
        while not stop.is_set():
            logger.error("hammer %s", calls[n])
            calls[n] += 1
            if calls[n] % 10 == 0:
                time.sleep(0.001)  # a few thousand records, not a flood to persist

    threads = [threading.Thread(target=hammer, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    time.sleep(0.05)
    handler.close()
    time.sleep(0.05)  # emits after close are counted too
    stop.set()
    for thread in threads:
        thread.join(DEADLINE)
    stats = handler.stats()
    assert stats["emitted"] + sum(stats["dropped"].values()) == sum(calls), stats
    assert set(stats["dropped"]) <= {"closed"}
    assert _workers_alive() == before


def test_record_put_as_close_seals_the_hand_off_is_counted(fake: FakeDiscord) -> None:
    """The race window itself: a put that passed the "stopping" check before close() and
    appends after the worker's last sweep is taken back and counted as dropped, not stranded.
    Resets Worker._stopping: it replays a put that checked before close() set it, a race no
    public call can time."""
    handler = make_handler({"general": fake.add_webhook()}, fake.host, close_timeout=0.5)
    log = TimedLogger(handler)
    log.error("before close")
    worker = handler.worker
    assert worker is not None
    handler.close()
    worker._stopping = False  # as seen by a put that checked before stop() set it
    log.error("racing close")
    stats = handler.stats()
    assert stats["emitted"] + sum(stats["dropped"].values()) == log.calls, stats
    assert stats["dropped"] == {"closed": 1}
    assert worker.backlog == 0


def test_first_emit_during_close_starts_no_worker_left_running(
    fake: FakeDiscord, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A handler without a worker (e.g. in a forked child) whose first emit races close():
    close waits for the start and stops that worker; none is left running, the record is
    accounted for. Resets DiscordHandler._start_failed: it gives a handler no worker, as a
    forked child has, without forking, which no public call does."""
    before = _workers_alive()
    original = Worker.start
    refuse = True

    def start(self: Worker) -> None:
        if refuse:
            raise RuntimeError("can't create new thread at interpreter shutdown")
        closer.start()
        closer.join(0.3)  # close() runs now, while the first emit is starting the worker
        original(self)

    monkeypatch.setattr(Worker, "start", start)
    handler = make_handler({"general": fake.add_webhook()}, fake.host, close_timeout=0.5)
    handler._start_failed = False  # no worker yet, as in a child after a fork
    refuse = False
    closer = threading.Thread(target=handler.close)
    log = TimedLogger(handler)
    log.error("first")
    closer.join(DEADLINE)
    wait_until(lambda: _workers_alive() == before)
    stats = handler.stats()
    assert stats["emitted"] + sum(stats["dropped"].values()) == 1, stats


def test_close_starts_no_thread(fake: FakeDiscord, monkeypatch: pytest.MonkeyPatch) -> None:
    """close() at exit starts no thread (Python 3.12.0-3.12.2 refuse one there, and
    logging.shutdown would then skip the handlers after ours), with a name lookup done."""
    url = fake.add_webhook(host="localhost")
    handler = make_handler({"general": url}, fake.named_host, close_timeout=1.0)
    log = TimedLogger(handler)
    log.error("looked up")
    assert handler.flush(DEADLINE)
    started: list[str] = []
    original = threading.Thread.start

    def counting(self: threading.Thread) -> None:
        started.append(self.name)
        original(self)

    monkeypatch.setattr(threading.Thread, "start", counting)
    handler.close()
    monkeypatch.undo()
    assert started == []
    assert handler.stats()["delivered"] == 1
