"""Bursts read well: distinct records that fit the limits go one embed each (messages of up
to 10) before any digest; a digest's title says what happened."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import fast_notifier
from discord_schema import validate_webhook_payload
from waiting import FAILSAFE

from discord_logging import DiscordHandler
from discord_logging.capture.direct import build_notification
from discord_logging.coordination import Grant, Limits, open_coordinator
from discord_logging.deadletters import MemoryDeadLetters
from discord_logging.delivery.notifier import Notifier
from discord_logging.render.packing import DIGEST_TITLES, DigestReason, Room, pack
from discord_logging.render.templating import EmbedRenderer
from discord_logging.testing import FakeDiscord


@pytest.fixture
def fake(fast_discord: FakeDiscord) -> FakeDiscord:
    """Discord's limits on short windows (conftest's fast_discord)."""
    return fast_discord


def notifier(fake: FakeDiscord, **options: Any) -> Notifier:
    return fast_notifier(fake, queue_size=500, **options)


async def burst(sender: Notifier, name: str, count: int, timeout: float) -> bool:
    """``count`` distinct records titled ``<name> <i>``, then the sender's flush."""
    for i in range(count):
        sender.submit(build_notification("general", f"{name} {i}", f"body {i}"))
    return await sender.flush(timeout)


def test_twelve_distinct_errors_are_twelve_embeds_not_a_digest(fake: FakeDiscord) -> None:
    """12 distinct errors logged at once, far inside the limits: two messages of plain embeds
    (10 and 2), each record its own embed with its own traceback; no digest, no 429."""
    handler = DiscordHandler(
        webhooks={"error": fake.add_webhook()},
        allowed_hosts=fake.host,
        dead_letters=MemoryDeadLetters(),
    )
    log = logging.getLogger("bursts.twelve")
    log.addHandler(handler)
    log.propagate = False
    for i in range(12):
        try:
            raise ValueError(f"bad input {i}")
        except ValueError:
            log.exception(f"job {i} failed")
    assert handler.flush(FAILSAFE)
    handler.close()
    embeds = [embed for message in fake.messages for embed in message.embeds]
    assert sorted(e["title"] for e in embeds) == sorted(f"job {i} failed" for i in range(12))
    assert all(f"ValueError: bad input {e['title'].split()[1]}" in e["description"] for e in embeds)
    assert len(fake.messages) <= 3  # the first alone when the lane was idle, then 10 and 1
    assert handler.stats()["digests_sent"] == 0
    assert fake.count_status(429) == 0
    for message in fake.messages:
        validate_webhook_payload(message.payload)


async def test_burst_beyond_the_limits_is_a_digest_saying_so(fake: FakeDiscord) -> None:
    """More records at once than the channel's window takes one embed each: digests, titled
    for a burst larger than the limits, never "rate limited"."""
    n = notifier(fake, rate_limit=3)
    for i in range(60):
        n.submit(build_notification("general", f"record {i}", f"body {i}"))
    assert await n.flush(FAILSAFE)
    await n.aclose()
    assert n.stats.get("digests_sent") >= 1
    titles = [m.embeds[0]["title"] for m in fake.messages if "(digest)" in m.embeds[0]["title"]]
    assert titles
    assert all(t.endswith("more than Discord's limits allow (digest)") for t in titles)
    assert fake.count_status(429) == 0


async def test_backlog_after_a_429_is_a_digest_saying_so(fake: FakeDiscord) -> None:
    """A backlog that met a 429: its digest says the alerts were held back by a rate limit."""
    n = notifier(fake, rate_limit=3)
    fake.force_429(1, retry_after=0.2)
    for i in range(60):
        n.submit(build_notification("general", f"record {i}", f"body {i}"))
    assert await n.flush(FAILSAFE)
    await n.aclose()
    first = fake.messages[0].embeds[0]["title"]
    assert first == DIGEST_TITLES[DigestReason.RATE_LIMITED].format(n=58)


async def test_backlog_kept_through_an_outage_is_a_digest_saying_so(fake: FakeDiscord) -> None:
    """Records kept through failures and redelivered after them: their digest says they were
    kept through an outage."""
    n = notifier(fake, rate_limit=3, retry_attempts=1)
    fake.fail_next(1, 503)
    for i in range(40):
        n.submit(build_notification("general", f"record {i}", f"body {i}"))
    deadline = time.monotonic() + FAILSAFE
    while n.stats.get("redelivered") < 40 and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    await n.aclose()
    titles = [m.embeds[0]["title"] for m in fake.messages]
    # One letter goes first as a probe of the webhook's health, then the rest together.
    assert titles == ["record 0", DIGEST_TITLES[DigestReason.OUTAGE].format(n=39)]


def test_pack_goes_plain_while_the_room_lasts() -> None:
    """25 short records: plain (10 embeds) when 3 messages fit, a digest when only 2 do, and
    one embed per message in a forum (embeds=1) while 25 fit."""
    renderer = EmbedRenderer()
    backlog = [renderer.render(build_notification("general", f"r{i}", "m")) for i in range(25)]
    plain = pack(backlog, renderer.digest_field, room=Room(3))
    assert (plain.digest, len(plain.embeds)) == (False, 10)
    assert plain.post_title == "r0 (+9 more)"
    digest = pack(backlog, renderer.digest_field, room=Room(2, reason=DigestReason.OUTAGE))
    assert digest.digest
    assert digest.embeds[0]["title"] == "25 alerts kept through an outage (digest)"
    assert digest.embeds[-1]["timestamp"]  # the time, in each reader's zone
    forum = pack(backlog, renderer.digest_field, room=Room(25, embeds=1))
    assert (forum.digest, len(forum.embeds), forum.post_title) == (False, 1, "r0")
    assert pack(backlog, renderer.digest_field).digest  # one message of room: a digest


async def test_overflow_of_the_queue_counts_in_the_burst(fake: FakeDiscord) -> None:
    """A burst larger than the queue: what overflowed into the dead letters is the same burst,
    so it goes in digests though the queue alone would fit plain messages; everything is
    delivered, and a later lone record goes plain again."""
    n = fast_notifier(fake, queue_size=20, rate_limit=10)
    for i in range(150):
        n.submit(build_notification("general", f"record {i}", f"body {i}"))
    assert await n.flush(FAILSAFE)
    n.submit(build_notification("general", "afterwards", "alone"))
    assert await n.flush(FAILSAFE)
    await n.aclose()
    assert n.stats.get("delivered") + n.stats.get("redelivered") == 151
    first = fake.messages[0].embeds[0]["title"]
    assert first == DIGEST_TITLES[DigestReason.BURST].format(n=20)
    assert fake.messages[-1].embeds[0]["title"] == "afterwards"


async def test_a_burst_beside_another_holder_in_the_channel_is_a_digest(
    fake: FakeDiscord, tmp_path: Path
) -> None:
    """Two holders share one channel's window (the store directory's limits, as a fleet's
    processes do): once the other has a message in the window, this holder may plan only its
    share of the window's places (29 // 2) one embed per record, so a 200-record burst (20
    plain messages) goes in digests, leaving places to the other holder's records
    (fleet.py's fork-4-store spent 31 messages on 1,200 records and its last waited a
    minute); a 30-record burst (3 plain messages) still goes plain beside it."""
    url = fake.add_webhook()
    first, second = (
        Notifier(
            webhooks={"general": url},
            allowed_hosts=fake.host,
            store_dir=tmp_path,
            queue_size=500,
        )
        for _ in range(2)
    )
    first.submit(build_notification("general", "the other holder", "alone"))
    assert await first.flush(FAILSAFE)
    assert await burst(second, "small", 30, 10)
    assert second.stats.get("digests_sent") == 0
    assert await burst(second, "record", 200, 20)
    await first.aclose()
    await second.aclose()
    assert second.stats.get("delivered") == 230
    assert second.stats.get("digests_sent") >= 1
    assert len(fake.messages) < 1 + 3 + 20  # fewer than one embed per record would take
    assert fake.count_status(429) == 0


async def test_a_burst_leaves_the_window_to_what_another_holder_said_it_has(
    fake: FakeDiscord, tmp_path: Path
) -> None:
    """Another process on the store has sent one message and said it still has 25 to send
    into the channel: a 100-record burst here (10 plain messages, which the window's equal
    share of 14 would take) goes in digests, leaving the places the other holder said it
    needs (fleet.py's first process planned the whole window before the others had a slot);
    a burst of 2 records beside it still goes plain."""
    url = fake.add_webhook()
    webhook = url.rstrip("/").split("/")[-2]
    other = open_coordinator(Limits(), store_dir=tmp_path)
    slot = await other.acquire(f"webhook:{webhook}", webhook, backlog=25)
    assert isinstance(slot, Grant)
    await other.complete(slot, None)
    n = Notifier(
        webhooks={"general": url}, allowed_hosts=fake.host, store_dir=tmp_path, queue_size=500
    )
    assert await burst(n, "small", 2, 10)
    assert n.stats.get("digests_sent") == 0
    assert await burst(n, "record", 100, 20)
    await n.aclose()
    await other.aclose()
    assert n.stats.get("delivered") == 102
    assert n.stats.get("digests_sent") >= 1
    assert len(fake.messages) < 2 + 10


async def test_a_lone_holder_still_spends_the_window_on_plain_embeds(
    fake: FakeDiscord, tmp_path: Path
) -> None:
    """A holder alone in the channel's window (its own slots only, the store directory's
    limits): a 30-record burst goes one embed per record, no digest."""
    n = Notifier(
        webhooks={"general": fake.add_webhook()}, allowed_hosts=fake.host, store_dir=tmp_path
    )
    for i in range(30):
        n.submit(build_notification("general", f"record {i}", f"body {i}"))
    assert await n.flush(FAILSAFE)
    await n.aclose()
    assert n.stats.get("delivered") == 30
    assert n.stats.get("digests_sent") == 0


async def test_the_burst_counts_the_owed_letters_not_back_in_the_queue(fake: FakeDiscord) -> None:
    """A lane's backlog is its queue plus the overflow it still owes (known by id): owed
    letters back in the queue are counted once, a kept letter that was never owed (an
    earlier run's) is not taken off the owed ones, and a letter taken back and delivered is
    no longer owed."""
    from discord_logging.deadletters import DeadLetterReason
    from discord_logging.delivery.pending import Pending
    from discord_logging.notification import DeliveryStatus, NotificationResult

    sender = notifier(fake)
    sender.start()
    lane = sender.lanes["general"]
    owed = [build_notification("general", f"owed {i}", "m") for i in range(3)]
    lane.redelivery.owed.update(n.id for n in owed)
    earlier = Pending(build_notification("general", "earlier", "m"), from_dead_letters=True)
    queue = [Pending(owed[0], from_dead_letters=True), earlier]
    assert lane.poster.backlog(queue) == 4  # 2 queued + 2 owed still kept
    delivered = NotificationResult(earlier.notification.id, DeliveryStatus.DELIVERED)
    lane.poster.outcome(earlier, delivered)  # never owed: the owed ones stay
    assert lane.poster.backlog(queue[:1]) == 3
    lane.poster.outcome(queue[0], NotificationResult(owed[0].id, DeliveryStatus.DELIVERED))
    assert lane.redelivery.owed == {owed[1].id, owed[2].id}
    assert lane.poster.backlog([]) == 2
    kept = NotificationResult(
        owed[1].id, DeliveryStatus.DEAD_LETTERED, error=DeadLetterReason.SHUTDOWN.value
    )
    lane.poster.outcome(Pending(owed[1], from_dead_letters=True), kept)  # kept again: owed
    assert lane.poster.backlog([]) == 2
    await sender.aclose()


async def test_flush_wakes_on_the_lanes_progress_not_a_poll(
    fake: FakeDiscord, monkeypatch: pytest.MonkeyPatch
) -> None:
    """flush() waits on the lanes' progress (a send handled, a look for kept letters done),
    not by polling: with its failsafe wait made longer than the test's own failsafe, a burst
    that overflows the queue into the dead letters and is taken back is still flushed (a
    missed progress would leave flush() waiting the failsafe out)."""
    from discord_logging.delivery import closing

    monkeypatch.setattr(closing, "FLUSH_FAILSAFE", 10 * FAILSAFE)
    sender = fast_notifier(fake, queue_size=5)
    assert await asyncio.wait_for(burst(sender, "flushed", 30, FAILSAFE), FAILSAFE)
    await sender.aclose()
