"""Lane guarantees against FakeDiscord over real HTTP: no exception ends a lane, a refused
digest is split in halves, a blip costs seconds, kept letters go out at start, the close
deadline neither duplicates nor loses."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from discord_schema import validate_webhook_payload
from letterkit import destination_of
from waiting import FAILSAFE

from discord_logging.capture.direct import build_notification
from discord_logging.deadletters import DeadLetter, DeadLetterReason, MemoryDeadLetters
from discord_logging.delivery.notifier import Notifier
from discord_logging.delivery.redelivery import REPEAT_NOTE
from discord_logging.notification import DeliveryStatus, Notification
from discord_logging.store import Store
from discord_logging.store.durable_letters import DurableDeadLetters
from discord_logging.testing import FakeDiscord

FAST = {"channel_window": 0.6, "ban_cooldown": 0.3, "probe_interval": 0.3, "circuit_reset": 0.3}
OUT_OF_RANGE = 1e13  # datetime.fromtimestamp raises "year 318857 is out of range"


@pytest.fixture
def fake() -> Iterator[FakeDiscord]:
    """A FakeDiscord with short windows so tests run in a fraction of a second."""
    with FakeDiscord(webhook_window=0.3, channel_limit=100, channel_window=0.6) as server:
        yield server


def notifier(fake: FakeDiscord, url: str, **options: Any) -> Notifier:
    engine = {k: options.pop(k) for k in list(options) if k in ("dead_letters", "transport")}
    return Notifier(
        webhooks={"general": url},
        allowed_hosts=fake.host,
        rand=lambda: 0.0,
        **FAST,
        **engine,
        **{"retry_attempts": 3, "rate_limit": 100, **options},
    )


def note(i: int, **changes: Any) -> Notification:
    return replace(build_notification("general", f"record {i}", f"message {i}"), **changes)


def titles(fake: FakeDiscord) -> list[str]:
    """Every record title Discord shows: embed titles, and digest field values."""
    shown = []
    for message in fake.messages:
        for embed in message.embeds:
            if "digest" in embed.get("title", ""):
                shown += [f["value"].split("\n")[0] for f in embed.get("fields", [])]
            else:
                shown.append(embed["title"])
    return shown


def lane_task(name: str = "general") -> asyncio.Task[Any]:
    """The running task of lane ``name`` on this loop, by the name the notifier gives it."""
    (task,) = [t for t in asyncio.all_tasks() if t.get_name() == f"discord-lane-{name}"]
    return task


async def until(condition: Any, timeout: float = FAILSAFE) -> bool:
    """Poll ``condition`` every 10 ms; False once it holds, True if ``timeout`` ran out."""
    for _ in range(int(timeout * 100)):
        if condition():
            return False
        await asyncio.sleep(0.01)
    return True


# -- no exception ends a lane -------------------------------------------------------------------


async def test_unrenderable_record_is_an_internal_error_and_the_lane_goes_on(
    fake: FakeDiscord, capsys: pytest.CaptureFixture[str]
) -> None:
    """A record whose time is out of range becomes an internal_error letter naming the error,
    reported once on stderr; later records of the webhook are still delivered."""
    n = notifier(fake, fake.add_webhook())
    bad = await asyncio.wait_for(n.send_notification(note(0, created=OUT_OF_RANGE)), FAILSAFE)
    worse = await asyncio.wait_for(n.send_notification(note(1, created=-OUT_OF_RANGE)), FAILSAFE)
    good = await asyncio.wait_for(n.send_notification(note(2)), FAILSAFE)
    await n.aclose()
    assert bad.status is DeliveryStatus.DEAD_LETTERED
    assert worse.status is DeliveryStatus.DEAD_LETTERED
    assert good.ok
    letters = n.dead_letters.letters()
    assert {letter.reason for letter in letters} == {DeadLetterReason.INTERNAL_ERROR}
    assert all("ValueError" in (letter.error or "") for letter in letters)
    assert not letters[0].retryable
    assert n.stats.get("internal_errors") == 2
    assert n.stats.snapshot()["dead_lettered_by_reason"] == {"internal_error": 2}
    err = capsys.readouterr().err
    assert err.count("internal error") == 1  # once per kind, no traceback
    assert "Traceback" not in err


async def test_bad_record_in_a_backlog_is_isolated(fake: FakeDiscord) -> None:
    """Among records sent together, only the unrenderable one is kept; the rest go out."""
    n = notifier(fake, fake.add_webhook())
    for i in range(6):
        n.submit(note(i, created=OUT_OF_RANGE) if i == 3 else note(i))
    await n.flush(FAILSAFE)  # False: a letter is kept, in memory
    await n.aclose()
    assert n.stats.get("delivered") == 5
    assert sorted(titles(fake)) == [f"record {i}" for i in (0, 1, 2, 4, 5)]
    (letter,) = n.dead_letters.letters()
    assert letter.reason is DeadLetterReason.INTERNAL_ERROR


async def test_bug_while_handling_a_response_keeps_the_carried_records(fake: FakeDiscord) -> None:
    """An exception after the request (classifying, bookkeeping) keeps what the message carried
    as internal_error letters, and the lane serves the next record."""
    n = notifier(fake, fake.add_webhook())
    n.start()
    lane = n.lanes["general"]
    record_success = lane.circuit.record_success
    calls = []

    def broken_once(*args: Any) -> None:
        calls.append(args)
        if len(calls) == 1:
            raise RuntimeError("bookkeeping bug")
        record_success(*args)

    lane.circuit.record_success = broken_once  # type: ignore[method-assign]
    first = await asyncio.wait_for(n.send_notification(note(0)), FAILSAFE)
    second = await asyncio.wait_for(n.send_notification(note(1)), FAILSAFE)
    await n.aclose()
    assert first.status is DeliveryStatus.DEAD_LETTERED
    assert "RuntimeError: bookkeeping bug" in (first.error or "")
    assert second.ok
    stats = n.stats.snapshot()
    assert stats["delivered"] + stats["dead_lettered"] == 2


class _Raising(httpx.AsyncBaseTransport):
    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        raise RuntimeError("cannot schedule new futures after interpreter shutdown")


async def test_transport_raising_anything_is_retried_then_kept(fake: FakeDiscord) -> None:
    """A transport raising a plain RuntimeError is a retryable failure: retried, then a
    retries_exhausted letter; the lane is still alive for the next record."""
    n = notifier(fake, fake.add_webhook(), transport=_Raising(), retry_attempts=2)
    first = await asyncio.wait_for(n.send_notification(note(0)), FAILSAFE)
    assert n.lanes["general"].busy is False
    assert not lane_task().done()
    await n.aclose()
    assert first.status is DeliveryStatus.DEAD_LETTERED
    (letter,) = n.dead_letters.letters()
    assert letter.reason is DeadLetterReason.RETRIES_EXHAUSTED
    assert letter.attempts == 2
    assert "RuntimeError" in (letter.error or "")


# -- a digest Discord refuses is split in halves ------------------------------------------------


async def test_refused_digest_is_split_in_halves_not_one_message_per_record(
    fake: FakeDiscord,
) -> None:
    """42 records, one of which Discord refuses (a blank field value): delivered in a handful
    of messages (binary split), the bad one a poison letter."""
    n = notifier(fake, fake.add_webhook(), queue_size=100)
    render, digest_field = n.renderer.render, n.renderer.digest_field

    def bad_render(notification: Notification) -> Any:
        rendered = render(notification)
        if notification.title == "record 17":
            rendered.embed["fields"] = [{"name": "x", "value": " "}]
        return rendered

    def bad_field(notification: Notification, limit: int) -> dict[str, Any]:
        made = digest_field(notification, limit)
        return {**made, "value": " "} if notification.title == "record 17" else made

    n.renderer.render = bad_render  # type: ignore[method-assign]
    n.renderer.digest_field = bad_field  # type: ignore[method-assign]
    for i in range(42):
        n.submit(note(i))
    await n.flush(FAILSAFE)  # False: a letter is kept, in memory
    await n.aclose()
    assert n.stats.get("delivered") == 41
    (letter,) = n.dead_letters.letters()
    assert letter.reason is DeadLetterReason.POISON
    assert letter.notification.title == "record 17"
    # One at once, then 41 as one digest, halved each time: about 2 log2(42) messages.
    assert len(fake.messages) <= 12
    assert fake.count_status(400) <= 7
    for message in fake.messages:
        validate_webhook_payload(message.payload)


# -- retries and redelivery: a blip costs seconds -----------------------------------------------


async def test_three_503_blip_is_delivered_within_seconds(fake: FakeDiscord) -> None:
    """503 x 3 exhausts DISCORD_RETRY_ATTEMPTS=3; the letter comes back after about a second,
    not after a 30 s refill round, and is delivered."""
    n = notifier(fake, fake.add_webhook())
    n.start()
    fake.fail_next(3, 503)
    n.submit(note(0))
    lane = n.lanes["general"]
    assert not await until(lambda: len(n.dead_letters) == 1 and not lane.busy)
    # The schedule: back in about a second.
    assert lane.redelivery.next_refill - lane.shared.clock() <= 1.0
    assert not await until(lambda: n.stats.get("redelivered") == 1)
    await n.aclose()
    assert n.stats.get("redelivered") == 1
    assert n.dead_letters.letters() == []
    assert fake.count_status(503) == 3
    assert len(fake.messages) == 1


async def test_start_redelivers_kept_letters_without_any_record(fake: FakeDiscord) -> None:
    """start() runs the lanes at once: letters an earlier run kept go out, oldest first,
    without a new record."""
    kept = MemoryDeadLetters()
    url = fake.add_webhook()
    to = destination_of(url)
    for i in range(3):
        kept.add(
            DeadLetter(
                note(i), "general", DeadLetterReason.SHUTDOWN, dead_at=float(i), destination=to
            )
        )
    kept.add(DeadLetter(note(9), "general", DeadLetterReason.POISON, destination=to))
    n = notifier(fake, url, dead_letters=kept)
    n.start()
    n.start()  # idempotent
    assert len(n.lanes) == 1
    for _ in range(200):
        if len(kept) == 1:
            break
        await asyncio.sleep(0.01)
    await n.aclose()
    assert titles(fake) == ["record 0", "record 1", "record 2"]
    assert [letter.reason for letter in kept.letters()] == [DeadLetterReason.POISON]


async def test_store_reads_run_on_the_stores_one_thread(
    fake: FakeDiscord, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A durable store's reads (SQLite may wait for another process's lock) run on the
    store's one thread, the thread that writes it, never the loop's; closing the notifier
    leaves that thread to the store, whose close stops it."""
    read_on: set[str] = set()
    read = DurableDeadLetters.retryable

    def spy(self: DurableDeadLetters, *args: Any, **kwargs: Any) -> list[DeadLetter]:
        read_on.add(threading.current_thread().name)
        return read(self, *args, **kwargs)

    monkeypatch.setattr(DurableDeadLetters, "retryable", spy)
    store = Store(tmp_path / "store")
    url = fake.add_webhook()
    letter = DeadLetter(
        note(0), "general", DeadLetterReason.SHUTDOWN, dead_at=0.0, destination=destination_of(url)
    )
    store.dead_letters.add(letter)
    store.dead_letters.sync()
    n = notifier(fake, url, dead_letters=store.dead_letters)
    n.start()
    assert not await until(lambda: titles(fake) == ["record 0"])
    await n.aclose()
    assert read_on == {"discord-logging-store"}
    store.close()
    assert not any(t.name == "discord-logging-store" for t in threading.enumerate())


# -- the close deadline: nothing twice, nothing lost --------------------------------------------


async def test_no_request_starts_too_close_to_the_deadline(fake: FakeDiscord) -> None:
    """With less than the floor left before the deadline, the queue is kept as `shutdown`
    without a request that would likely be cut off."""
    n = notifier(fake, fake.add_webhook())
    n.start()
    await asyncio.sleep(0.05)
    n.submit(note(0))
    assert await n.aclose(0.2) == 1
    assert fake.requests == []
    (letter,) = n.dead_letters.letters()
    assert letter.reason is DeadLetterReason.SHUTDOWN


async def test_request_while_closing_is_bounded_by_the_deadline(fake: FakeDiscord) -> None:
    """A retry that starts while closing gets the time left as its timeout: a slow Discord
    answers too late, the lane ends on its own by the deadline (not cancelled mid-request)
    and keeps the record as `uncertain`: the request went out whole, and this Discord does
    create the message once its latency is over, so a later post must say it may repeat."""
    n = notifier(fake, fake.add_webhook(), timeout_seconds=30)
    fake.fail_next(1, 503)
    await asyncio.wait_for(until_sent(n, fake), FAILSAFE)  # answered 503: a retry is due in 0.5 s
    task = lane_task()
    fake.set_latency(5)
    closing = asyncio.ensure_future(n.aclose(1.2))
    done, _ = await asyncio.wait([closing], timeout=3)
    fake.set_latency(0)
    assert done, "close() waited past the deadline for a slow request"
    assert closing.result() == 1
    assert not task.cancelled()
    (letter,) = n.dead_letters.letters()
    assert letter.reason is DeadLetterReason.UNCERTAIN


async def until_sent(n: Notifier, fake: FakeDiscord) -> None:
    n.submit(note(0))
    while not fake.requests:
        await asyncio.sleep(0.01)


async def test_request_in_flight_at_the_deadline_is_cut_off_and_kept_as_uncertain(
    fake: FakeDiscord,
) -> None:
    """A request already in flight when the deadline passes is cut off then, not after its
    own timeout (issue 19, point 4: the close deadline is a deadline): its body went out
    whole, so it is kept as `uncertain` (redelivered with the repeat note); the record queued
    behind it, never sent, as `shutdown`."""
    n = notifier(fake, fake.add_webhook())
    fake.set_latency(0.4)
    n.submit(note(0))
    await asyncio.sleep(0.05)
    n.submit(note(1))
    left = await n.aclose(0.1)
    fake.set_latency(0)
    assert n.stats.get("delivered") == 0
    assert left == 2
    letters = {letter.notification.title: letter for letter in n.dead_letters.letters()}
    assert letters["record 0"].reason is DeadLetterReason.UNCERTAIN
    assert letters["record 0"].attempts == 1
    assert letters["record 1"].reason is DeadLetterReason.SHUTDOWN


async def test_request_cut_off_in_flight_is_kept_as_uncertain(fake: FakeDiscord) -> None:
    """A lane cancelled while its request is in flight keeps it as `uncertain` (retryable):
    nobody knows whether Discord created the message."""
    n = notifier(fake, fake.add_webhook())
    fake.set_hang(True)
    n.submit(note(0))
    await asyncio.sleep(0.1)
    assert n.lanes["general"].in_flight
    task = lane_task()
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    fake.set_hang(False)
    await n.aclose()
    (letter,) = n.dead_letters.letters()
    assert letter.reason is DeadLetterReason.UNCERTAIN
    assert letter.retryable
    assert "may have" in (letter.error or "")


async def test_uncertain_letter_is_redelivered_with_a_visible_note(fake: FakeDiscord) -> None:
    """An `uncertain` letter goes out again with a footer saying it may repeat a message;
    the embed stays valid even when the record fills the 6000 characters."""
    kept = MemoryDeadLetters()
    big = note(0, message="y" * 6000, fields=tuple((f"k{i}", "v" * 200) for i in range(6)))
    url = fake.add_webhook()
    to = destination_of(url)
    kept.add(DeadLetter(big, "general", DeadLetterReason.UNCERTAIN, destination=to))
    kept.add(DeadLetter(note(1), "general", DeadLetterReason.SHUTDOWN, destination=to))
    n = notifier(fake, url, dead_letters=kept)
    n.start()
    for _ in range(200):
        if len(kept) == 0:
            break
        await asyncio.sleep(0.01)
    await n.aclose()
    assert len(kept) == 0
    embeds = [embed for message in fake.messages for embed in message.embeds]
    marked = [e for e in embeds if e.get("footer", {}).get("text", "").startswith(REPEAT_NOTE)]
    assert [e["title"] for e in marked] == ["record 0"]
    assert len(embeds) == 2
    for message in fake.messages:
        validate_webhook_payload(message.payload)


# -- the first record without a webhook says so -------------------------------------------------


async def test_first_record_without_a_webhook_is_announced_once(
    fake: FakeDiscord, capsys: pytest.CaptureFixture[str]
) -> None:
    """The first drop for want of a webhook names the alert type and the variable to set."""
    n = Notifier(webhooks={"security": fake.add_webhook()}, allowed_hosts=fake.host)
    await n.send("error", "nowhere")
    await n.send("error", "nowhere again")
    await n.aclose()
    err = capsys.readouterr().err
    assert err.count("discord-logging:") == 1
    assert "'error'" in err
    assert "DISCORD_WEBHOOK_ERRORS" in err
    assert n.stats.snapshot()["dropped"] == {"no_webhook": 2}


# -- redelivery claims stay alive while letters wait in a lane ----------------------------------


class RecordingLetters(MemoryDeadLetters):
    """Memory dead letters that record every renew() call."""

    def __init__(self) -> None:
        super().__init__()
        self.renewed: list[list[str]] = []

    def renew(self, letter_ids: Sequence[str]) -> None:
        self.renewed.append(sorted(letter_ids))


async def test_claims_on_queued_letters_are_renewed_every_30_seconds(fake: FakeDiscord) -> None:
    """Letters a lane took back and still holds (a ban pause) have their claims renewed every
    30 s of the lane's clock, well within the store's 120 s lease; nothing else is renewed."""
    now = [1000.0]
    kept = RecordingLetters()
    letters = [note(i) for i in range(2)]
    url = fake.add_webhook()
    for letter in letters:
        kept.add(
            DeadLetter(
                letter, "general", DeadLetterReason.SHUTDOWN, destination=destination_of(url)
            )
        )
    n = Notifier(
        webhooks={"general": url},
        allowed_hosts=fake.host,
        dead_letters=kept,
        clock=lambda: now[0],
        rand=lambda: 0.0,
    )
    fake.set_ban(True, retry_after=600)
    n.start()
    lane = n.lanes["general"]
    assert not await until(lambda: n.stats.get("banned") == 1 and len(lane.queue) == 2)
    ids = sorted(letter.id for letter in letters)
    assert kept.renewed == []  # just claimed
    for moment, expected in [(1020.0, 0), (1031.0, 1), (1045.0, 1), (1062.0, 2), (1093.0, 3)]:
        now[0] = moment
        lane.wake()
        await asyncio.sleep(0.05)
        assert kept.renewed == [ids] * expected, moment
    fake.set_ban(False)
    await n.aclose(0.0)


async def test_no_retry_is_scheduled_past_the_retry_deadline(fake: FakeDiscord) -> None:
    """Attempts left do not stretch the retry deadline: a retry that would start after it is
    not waited for; the record is kept as retries_exhausted at once."""
    url = fake.add_webhook()
    fake.set_status_override(url.split("/")[-2], 503)
    # Backoff (rand 0): 0.5 s, then 1 s: the second ends past the deadline.
    n = notifier(fake, url, retry_attempts=20, retry_deadline=1.0)
    result = await asyncio.wait_for(n.send_notification(note(0)), FAILSAFE)
    await n.aclose()
    assert result.status is DeliveryStatus.DEAD_LETTERED
    (letter,) = n.dead_letters.letters()
    assert letter.reason is DeadLetterReason.RETRIES_EXHAUSTED
    assert letter.attempts == 2
    assert fake.count_status(503) == 2


async def test_a_look_that_finds_nothing_free_looks_again_within_seconds(
    fake: FakeDiscord,
) -> None:
    """200 kept letters all held by another live process (another fleet worker sending
    them): the lane's look comes back empty, and it looks again after about a second, then
    2, 4 s ..., not after a whole 30 s refill round; once they are free it takes them."""
    sink = MemoryDeadLetters()
    held_elsewhere = True
    real = sink.retryable
    looks = []

    def retryable(webhook: str, limit: int, **kwargs: Any) -> list[DeadLetter]:
        looks.append(held_elsewhere)
        return [] if held_elsewhere else real(webhook, limit, **kwargs)

    sink.retryable = retryable  # type: ignore[method-assign]
    url = fake.add_webhook()
    for i in range(200):
        sink.add(
            DeadLetter(
                note(i),
                "general",
                DeadLetterReason.RETRIES_EXHAUSTED,
                destination=destination_of(url),
            )
        )
    n = notifier(fake, url, dead_letters=sink)
    n.start()
    lane = n.lanes["general"]
    assert not await until(lambda: len(looks) >= 1)
    assert lane.redelivery.next_refill - lane.shared.clock() <= 1.0
    held_elsewhere = False  # the other process finished (or gave them up)
    assert not await until(lambda: n.stats.get("redelivered") >= 1)
    await n.aclose()


# -- flush delivers a burst larger than the queue ----------------------------------------------


async def test_flush_delivers_what_overflowed_the_queue_while_discord_is_healthy(
    fake: FakeDiscord,
) -> None:
    """60 records into a queue of 10: 50 overflow into the dead letters. flush() returns
    only once they were taken back and delivered, not as soon as the queue is empty, so a
    script that logs a burst, flushes and exits leaves nothing for the next run."""
    n = notifier(fake, fake.add_webhook(), queue_size=10)
    n.submit(note(-1))  # the lane starts, finds no kept letters: its next look is 30 s away
    assert await n.flush(FAILSAFE) is True
    for i in range(60):
        n.submit(note(i))
    assert await n.flush(FAILSAFE) is True
    assert n.stats.get("delivered") + n.stats.get("redelivered") == 61
    assert len(n.dead_letters) == 0
    assert sorted(set(titles(fake))) == sorted(f"record {i}" for i in range(-1, 60))
    await n.aclose()


async def test_flush_waits_past_a_look_cut_short_by_letters_held_elsewhere(
    fake: FakeDiscord,
) -> None:
    """A look that spent its scan budget on letters other processes hold comes back short
    though more of this lane's overflow waits behind them: flush() goes on waiting (the next
    look goes on from there) instead of returning with the overflow still in the store."""

    class CutShortOnce(MemoryDeadLetters):
        cut = 0
        last_cut = False

        def retryable(self, webhook: str, limit: int) -> list[DeadLetter]:
            self.last_cut = bool(len(self)) and self.cut < 1
            if self.last_cut:
                self.cut += 1
                return []  # as if 150 held letters lay in front
            return super().retryable(webhook, limit)

        def scan_cut_short(self, webhook: str) -> bool:
            return self.last_cut

    sink = CutShortOnce()
    n = notifier(fake, fake.add_webhook(), queue_size=10, dead_letters=sink)
    n.submit(note(-1))
    assert await n.flush(FAILSAFE) is True
    for i in range(30):
        n.submit(note(i))
    assert await n.flush(FAILSAFE) is True
    assert sink.cut == 1
    assert n.stats.get("delivered") + n.stats.get("redelivered") == 31
    await n.aclose()


async def test_flush_waits_for_overflow_kept_while_a_look_read_the_store(
    fake: FakeDiscord,
) -> None:
    """Records that overflow while a look is reading the store (which runs on the store
    thread, beside the loop) may not be seen by that read: the look coming back short does
    not settle the debt, so flush() waits for them too instead of leaving them for the next
    run."""
    n: Notifier

    class OverflowDuringRead(MemoryDeadLetters):
        burst_sent = False

        def retryable(self, webhook: str, limit: int) -> list[DeadLetter]:
            found = super().retryable(webhook, limit)
            if not self.burst_sent and len(self) == 0:  # the lane's look after its first record
                self.burst_sent = True
                for i in range(30):  # a burst arrives meanwhile: 20 overflow the queue of 10
                    n.submit(note(i))
            return found

    sink = OverflowDuringRead()
    n = notifier(fake, fake.add_webhook(), queue_size=10, dead_letters=sink)
    n.submit(note(-1))  # the lane starts and looks for kept letters: the burst comes then
    assert await n.flush(FAILSAFE) is True
    assert sink.burst_sent
    assert len(sink) == 0
    assert sorted(set(titles(fake))) == sorted(f"record {i}" for i in range(-1, 30))
    await n.aclose()


async def test_flush_does_not_wait_for_overflow_of_a_failing_webhook(fake: FakeDiscord) -> None:
    """Overflow on a webhook that answers 503: flush() returns once the letters are kept
    (nothing can be delivered now); it does not wait out its timeout."""
    url = fake.add_webhook()
    fake.set_status_override(url.split("/")[-2], 503)
    n = notifier(fake, url, queue_size=5, retry_attempts=1)
    for i in range(20):
        n.submit(note(i))
    loop = asyncio.get_running_loop()
    started = loop.time()
    await n.flush(FAILSAFE)
    # Returned when the letters were kept, not at its timeout (half of it is far more than
    # a loaded machine needs; the whole of it would mean flush waited for nothing).
    assert loop.time() - started < FAILSAFE / 2
    assert len(n.dead_letters) == 20
    await n.aclose()


@pytest.mark.parametrize("status", [502, 504, 524, None])
async def test_a_lost_answer_is_posted_again_with_the_repeat_note(
    fake: FakeDiscord, status: int | None
) -> None:
    """Discord created the message but its answer was lost (a gateway's 502/504/524, or the
    connection closed with no answer): the retry says it may repeat an earlier message, so
    nothing is posted twice unmarked (rule 3)."""
    url = fake.add_webhook()
    fake.lose_answers(1, status)
    n = notifier(fake, url)
    result = await n.send_notification(note(1))
    await n.aclose()
    assert result.ok
    first, second = fake.messages
    assert "footer" not in first.payload["embeds"][0] or not first.payload["embeds"][0]["footer"][
        "text"
    ].startswith(REPEAT_NOTE)
    assert second.payload["embeds"][0]["footer"]["text"].startswith(REPEAT_NOTE)


async def test_a_request_that_never_left_is_retried_without_the_note(fake: FakeDiscord) -> None:
    """A 503 (Discord refused to work on it) is retried as it was: one message, no note."""
    url = fake.add_webhook()
    fake.fail_next(1, 503)
    n = notifier(fake, url)
    result = await n.send_notification(note(1))
    await n.aclose()
    assert result.ok
    (only,) = fake.messages
    assert REPEAT_NOTE not in json.dumps(only.payload, ensure_ascii=False)


async def test_answers_lost_until_retries_run_out_keep_the_letter_marked(fake: FakeDiscord) -> None:
    """A notification whose answers kept getting lost until its retries ran out is kept as
    uncertain (not retries_exhausted), so its eventual redelivery still carries the note."""
    url = fake.add_webhook()
    kept = MemoryDeadLetters()
    fake.lose_answers(10, 504)
    n = notifier(fake, url, dead_letters=kept, retry_attempts=2)
    await n.send_notification(note(1))
    await n.aclose()
    (letter,) = kept.letters()
    assert letter.reason is DeadLetterReason.UNCERTAIN
    assert "504" in (letter.error or "")
    first, second = fake.messages
    assert REPEAT_NOTE in json.dumps(second.payload, ensure_ascii=False)
    assert REPEAT_NOTE not in json.dumps(first.payload, ensure_ascii=False)
