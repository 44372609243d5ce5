"""The delivery engine against FakeDiscord over real HTTP: responses, limits, batching, lanes."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
from discord_schema import validate_webhook_payload
from waiting import FAILSAFE

from discord_logging.capture.direct import build_notification
from discord_logging.deadletters import DeadLetterReason
from discord_logging.delivery.notifier import Notifier
from discord_logging.notification import DeliveryStatus
from discord_logging.render.message_limits import MESSAGE_EMBED_TOTAL, embed_length
from discord_logging.testing import FakeDiscord

FAST = {
    "channel_window": 0.6,
    "ban_cooldown": 0.3,
    "probe_interval": 0.3,
    "circuit_reset": 0.3,
}


@pytest.fixture
def fake() -> Iterator[FakeDiscord]:
    """A FakeDiscord with short windows so tests run in a fraction of a second."""
    with FakeDiscord(webhook_window=0.3, channel_limit=30, channel_window=0.6) as server:
        yield server


def notifier(fake: FakeDiscord, webhooks: dict[str, str], **options: Any) -> Notifier:
    settings = {"retry_attempts": 3, "rate_limit": 30, **options}
    timing = {k: settings.pop(k) for k in list(settings) if k in FAST or k == "retry_deadline"}
    return Notifier(
        webhooks=webhooks,
        allowed_hosts=fake.host,
        rand=lambda: 0.0,
        **{**FAST, **timing},
        **settings,
    )


def note(i: int = 0, alert_type: str = "general", **kw: Any) -> Any:
    return build_notification(alert_type, f"record {i}", f"message {i}", **kw)


async def test_delivers_with_message_id_and_valid_payload(fake: FakeDiscord) -> None:
    """A lone notification goes at once, with Discord's message id, as a schema-valid body."""
    n = notifier(fake, {"general": fake.add_webhook()})
    result = await n.send("general", "hello @everyone", "body", fields={"k": "v"})
    await n.aclose()
    assert result.status is DeliveryStatus.DELIVERED
    assert result.message_id == fake.messages[0].message_id
    payload = fake.messages[0].payload
    validate_webhook_payload(payload)
    assert payload["allowed_mentions"] == {"parse": []}
    assert payload["embeds"][0]["fields"][-1] == {"name": "k", "value": "v", "inline": True}


async def test_backlog_is_batched_within_limits(fake: FakeDiscord) -> None:
    """Records waiting behind a send go together: <= 10 embeds, <= 6000 characters."""
    n = notifier(fake, {"general": fake.add_webhook()})
    for i in range(10):
        n.submit(build_notification("general", f"r{i}", "x" * 1500))
    assert await n.flush(FAILSAFE)
    await n.aclose()
    assert n.stats.get("delivered") == 10
    assert len(fake.messages) < 10
    for message in fake.messages:
        assert len(message.embeds) <= 10
        assert sum(embed_length(e) for e in message.embeds) <= MESSAGE_EMBED_TOTAL
        validate_webhook_payload(message.payload)


async def test_large_backlog_becomes_a_digest(fake: FakeDiscord) -> None:
    """A backlog needing more plain messages than the channel's window takes is sent as
    digests, one record per field, titled for a burst beyond the limits."""
    n = notifier(fake, {"general": fake.add_webhook()}, queue_size=200, rate_limit=5)
    for i in range(120):
        n.submit(note(i))
    assert await n.flush(FAILSAFE)
    await n.aclose()
    assert n.stats.get("delivered") == 120
    assert n.stats.get("digests_sent") >= 1
    assert len(fake.messages) <= 5
    digest = fake.messages[0]
    assert digest.embeds[0]["title"].endswith("more than Discord's limits allow (digest)")
    assert sum(len(e["fields"]) for e in digest.embeds) > 10
    assert "records.txt" in {name for name, _ in digest.files.values()}
    validate_webhook_payload(digest.payload)


async def test_cut_record_carries_full_text_as_attachment(fake: FakeDiscord) -> None:
    """A traceback too long for the embed goes along in full as traceback.txt."""
    n = notifier(fake, {"general": fake.add_webhook()})
    try:
        raise ValueError("deep " + "x" * 9000)
    except ValueError as exc:
        result = await n.send("general", "boom", "m", exc=exc)
    await n.aclose()
    assert result.ok
    files = fake.messages[0].files
    (name, data) = next(iter(files.values()))
    assert name == "traceback.txt"
    assert b"x" * 9000 in data


async def test_5xx_is_retried_then_delivered(fake: FakeDiscord) -> None:
    """503 twice, then success: delivered on the third attempt, nothing dead-lettered."""
    n = notifier(fake, {"general": fake.add_webhook()}, retry_deadline=30)
    fake.fail_next(2, 503)
    result = await asyncio.wait_for(n.send("general", "t", "m"), FAILSAFE)
    await n.aclose()
    assert result.ok
    assert result.attempts == 3
    assert n.stats.get("retried") == 2


@pytest.mark.parametrize("status", [500, 502, 504, 524])
async def test_persistent_5xx_dead_letters_after_retry_attempts(
    fake: FakeDiscord, status: int
) -> None:
    """A webhook answering 5xx is tried DISCORD_RETRY_ATTEMPTS times, then dead-lettered;
    after a gateway's 502/504/524 (Discord may have posted it) the letter is uncertain."""
    url = fake.add_webhook()
    fake.set_status_override(url.split("/")[-2], status)
    n = notifier(fake, {"general": url}, retry_attempts=2)
    result = await asyncio.wait_for(n.send("general", "t"), FAILSAFE)
    await n.aclose()
    assert result.status is DeliveryStatus.DEAD_LETTERED
    assert fake.count_status(status) == 2
    (letter,) = n.dead_letters.letters()
    expected = DeadLetterReason.RETRIES_EXHAUSTED if status == 500 else DeadLetterReason.UNCERTAIN
    assert letter.reason is expected
    assert letter.retryable
    assert letter.http_status == status


async def test_400_is_poison_and_never_retried(fake: FakeDiscord) -> None:
    """A 400 is dead-lettered with Discord's error, sent once only."""
    url = fake.add_webhook()
    fake.set_status_override(url.split("/")[-2], 400)
    n = notifier(fake, {"general": url})
    result = await asyncio.wait_for(n.send("general", "t"), FAILSAFE)
    await n.aclose()
    assert result.status is DeliveryStatus.DEAD_LETTERED
    assert len(fake.requests) == 1
    (letter,) = n.dead_letters.letters()
    assert letter.reason is DeadLetterReason.POISON
    assert not letter.retryable


@pytest.mark.parametrize(("status", "code"), [(404, 10015), (401, 50027), (403, 50013)])
async def test_disabled_webhook_is_probed_at_most_once_per_interval(
    status: int, code: int | None
) -> None:
    """401/403/404 disable the lane: later records are dead-lettered without any request."""
    with FakeDiscord() as fake:
        url = fake.add_webhook()
        webhook_id = url.split("/")[-2]
        if status == 404:
            fake.delete_webhook(webhook_id)
        elif status == 401:
            url = url.rsplit("/", 1)[0] + "/wrongtoken"
        else:
            fake.set_status_override(webhook_id, 403)
        n = notifier(fake, {"general": url}, probe_interval=300)
        first = await asyncio.wait_for(n.send("general", "t"), FAILSAFE)
        results = [await asyncio.wait_for(n.send("general", f"t{i}"), FAILSAFE) for i in range(20)]
        await n.aclose()
    assert first.status is DeliveryStatus.DEAD_LETTERED
    assert first.http_status == status
    assert first.error_code == code
    assert all(r.status is DeliveryStatus.DEAD_LETTERED for r in results)
    assert len(fake.requests) == 1
    assert {letter.reason for letter in n.dead_letters.letters()} == {
        DeadLetterReason.WEBHOOK_DISABLED
    }


async def test_disabled_webhook_comes_back_after_a_good_probe(fake: FakeDiscord) -> None:
    """After the probe interval one GET probe is sent; when it succeeds the lane delivers again."""
    url = fake.add_webhook()
    webhook_id = url.split("/")[-2]
    fake.set_status_override(webhook_id, 403)
    n = notifier(fake, {"general": url}, probe_interval=0.2)
    assert not (await n.send("general", "a")).ok
    fake.set_status_override(webhook_id, None)
    await asyncio.sleep(0.25)
    result = await asyncio.wait_for(n.send("general", "b"), FAILSAFE)
    channels = n.lanes["general"].shared.channels
    for _ in range(500):  # the channel lookup follows the first delivery
        if channels.channel(webhook_id) is not None:
            break
        await asyncio.sleep(0.01)
    await n.aclose()
    gets = [r for r in fake.requests if r.method == "GET"]
    assert len(gets) == 2  # one probe, then one channel lookup (never one per record)
    assert result.ok


async def test_413_resends_without_the_attachment(fake: FakeDiscord) -> None:
    """A 413 drops the file and resends the embed."""
    url = fake.add_webhook()
    n = notifier(fake, {"general": url})
    fake.fail_next(1, 413)
    sent = n.send("general", "t", "m", exc=ValueError("x" * 9000))
    result = await asyncio.wait_for(sent, FAILSAFE)
    await n.aclose()
    assert result.ok
    assert fake.messages[0].files == {}


async def test_per_webhook_429_waits_retry_after(fake: FakeDiscord) -> None:
    """A 429 from the webhook bucket is waited out and the record delivered."""
    n = notifier(fake, {"general": fake.add_webhook()})
    fake.force_429(1, retry_after=0.1)
    result = await asyncio.wait_for(n.send("general", "t"), FAILSAFE)
    await n.aclose()
    assert result.ok
    assert n.stats.get("rate_limited") == 1


async def test_global_429_pauses_every_lane(fake: FakeDiscord) -> None:
    """A global 429 holds back all lanes for retry_after; both records still arrive."""
    n = notifier(fake, {"general": fake.add_webhook(), "error": fake.add_webhook()})
    fake.force_global_429(1, retry_after=0.2)
    first = asyncio.ensure_future(n.send("general", "a"))
    while fake.count_status(429) == 0:
        await asyncio.sleep(0.005)
    await asyncio.sleep(0.01)  # let the lane read the 429
    second = await asyncio.wait_for(n.send("error", "b"), FAILSAFE)
    assert (await asyncio.wait_for(first, FAILSAFE)).ok
    await n.aclose()
    assert second.ok
    (limited,) = [r for r in fake.requests if r.status == 429]
    accepted = [r for r in fake.requests if r.status == 200 and r.method == "POST"]
    assert len(accepted) == 2
    assert all(r.time >= limited.time + 0.2 for r in accepted)


async def test_cloudflare_ban_cools_off_and_keeps_records(fake: FakeDiscord) -> None:
    """A 429 without Via pauses every lane for the cool-off; no record is dropped."""
    n = notifier(fake, {"general": fake.add_webhook()}, ban_cooldown=0.3)
    fake.set_ban(True, retry_after=0)
    for i in range(5):
        n.submit(note(i))
    await asyncio.sleep(0.1)
    assert fake.count_status(429) == 1
    fake.set_ban(False)
    assert await n.flush(FAILSAFE)
    await n.aclose()
    assert n.stats.get("banned") == 1
    assert n.stats.get("delivered") == 5
    assert len(n.dead_letters) == 0


async def test_announced_bucket_is_respected_without_429s() -> None:
    """With 2 requests per 0.3 s announced, many sends earn no 429."""
    with FakeDiscord(webhook_limit=2, webhook_window=0.3) as fake:
        n = notifier(fake, {"general": fake.add_webhook()})
        results = [await n.send("general", f"r{i}") for i in range(6)]
        await n.aclose()
    assert all(r.ok for r in results)
    assert fake.count_status(429) == 0


async def test_hidden_channel_limit_is_respected_without_429s() -> None:
    """The hidden 3-per-0.6 s channel limit is never hit: the local window holds back."""
    with FakeDiscord(channel_limit=3, channel_window=0.6) as fake:
        n = notifier(fake, {"general": fake.add_webhook()}, rate_limit=3)
        results = [await n.send("general", f"r{i}") for i in range(7)]
        await n.aclose()
    assert all(r.ok for r in results)
    assert fake.count_status(429) == 0
    assert len(fake.messages) == 7


async def test_global_limit_is_respected_across_lanes() -> None:
    """Five lanes sharing a 4 requests/s global limit earn no 429."""
    with FakeDiscord(global_limit=4, global_window=1.0) as fake:
        hooks = {f"t{i}": fake.add_webhook() for i in range(5)}
        n = notifier(fake, hooks, global_rate_limit=4)
        results = await asyncio.wait_for(
            asyncio.gather(*(n.send(name, "x") for name in hooks for _ in range(2))), 10
        )
        await n.aclose()
    assert all(r.ok for r in results)
    assert fake.count_status(429) == 0


async def test_failing_lane_does_not_delay_a_healthy_one(fake: FakeDiscord) -> None:
    """While one webhook answers 503 and backs off, another delivers at once."""
    bad = fake.add_webhook()
    fake.set_status_override(bad.split("/")[-2], 503)
    n = notifier(fake, {"general": bad, "error": fake.add_webhook()}, retry_deadline=60)
    bad_task = asyncio.ensure_future(n.send("general", "bad"))
    await asyncio.sleep(0.05)
    good = await asyncio.wait_for(n.send("error", "good"), FAILSAFE)
    assert good.ok
    assert not bad_task.done()  # still backing off (1 s) while the other lane delivered
    await n.aclose(0.1)
    assert (await bad_task).status is DeliveryStatus.DEAD_LETTERED


async def healed_and_redelivered(fake: FakeDiscord, webhook_id: str, n: Notifier) -> None:
    """The webhook answers again: once the circuit's reset (FAST) is over a probe goes through,
    the letters are redelivered, and ``n`` is closed."""
    fake.set_status_override(webhook_id, None)
    await asyncio.sleep(0.35)
    assert (await asyncio.wait_for(n.send("general", "probe"), FAILSAFE)).ok
    for _ in range(100):
        if len(n.dead_letters) == 0:
            break
        await asyncio.sleep(0.02)
    await n.aclose()


async def test_a_running_update_kept_as_a_letter_is_redelivered_as_what_was_counted(
    fake: FakeDiscord,
) -> None:
    """An incident's running update that carried a record and was kept through an outage is
    redelivered as a summary of what it counted, with its listing, never as "still
    happening" (docs/architecture.md, "Words": a letter says what was known when kept)."""
    url = fake.add_webhook()
    webhook_id = url.split("/")[-2]
    fake.set_status_override(webhook_id, 503)
    n = notifier(fake, {"general": url}, retry_attempts=1, circuit_threshold=2)
    now = time.time()
    running = replace(
        note(1).with_count(12, now - 60, last_seen=now - 1, ongoing=True),
        fingerprint="f-12",
        samples=tuple((now - 60 + i, f"message {i}") for i in range(12)),
    )
    kept = await asyncio.wait_for(n.send_notification(running), FAILSAFE)
    assert kept.status is DeliveryStatus.DEAD_LETTERED
    (letter,) = n.dead_letters.letters()
    assert (letter.notification.count, letter.notification.ongoing) == (12, False)
    await healed_and_redelivered(fake, webhook_id, n)
    (summary,) = [m for m in fake.messages if m.embeds[0].get("title", "").endswith("(x 12)")]
    text = summary.embeds[0]["description"]
    assert "**12 records** since" in text
    assert "still happening" not in text
    stored = fake.message(summary.message_id)
    assert stored is not None
    assert stored.files["records.txt"].decode().count("  message ") == 12


async def test_circuit_opens_dead_letters_then_redelivers(fake: FakeDiscord) -> None:
    """Repeated failures open the circuit; letters are redelivered once it closes."""
    url = fake.add_webhook()
    webhook_id = url.split("/")[-2]
    fake.set_status_override(webhook_id, 502)
    n = notifier(fake, {"general": url}, retry_attempts=1, circuit_threshold=2)
    first = [await asyncio.wait_for(n.send("general", f"r{i}"), FAILSAFE) for i in range(3)]
    assert all(r.status is DeliveryStatus.DEAD_LETTERED for r in first)
    reasons = {letter.reason for letter in n.dead_letters.letters()}
    assert DeadLetterReason.CIRCUIT_OPEN in reasons
    await healed_and_redelivered(fake, webhook_id, n)
    assert len(n.dead_letters) == 0
    assert n.stats.get("redelivered") == 3
    assert sum(len(m.embeds) for m in fake.messages) == 4


async def test_timeout_is_retried(fake: FakeDiscord) -> None:
    """A server slower than the timeout counts as a retryable failure."""
    n = notifier(fake, {"general": fake.add_webhook()}, timeout=0.1, retry_attempts=1)
    fake.set_latency(0.3)
    result = await asyncio.wait_for(n.send("general", "t"), FAILSAFE)
    fake.set_latency(0)
    await n.aclose()
    assert result.status is DeliveryStatus.DEAD_LETTERED
    assert "timed out" in (result.error or "")


async def test_connection_refused_is_dead_lettered_not_raised() -> None:
    """Nothing listening: a retryable failure, kept as a dead letter."""
    with FakeDiscord() as fake:
        url, host = fake.add_webhook(), fake.host
    n = Notifier(webhooks={"general": url}, allowed_hosts=host, retry_attempts=1)
    result = await asyncio.wait_for(n.send("general", "t"), FAILSAFE)
    await n.aclose()
    assert result.status is DeliveryStatus.DEAD_LETTERED
    assert "Connect" in (result.error or "")


async def test_close_dead_letters_what_cannot_be_sent(fake: FakeDiscord) -> None:
    """A close while the server hangs: the request in flight may use its own timeout, then
    everything is handed to the dead letters."""
    n = notifier(fake, {"general": fake.add_webhook()}, timeout_seconds=0.5)
    fake.set_hang(True)
    for i in range(5):
        n.submit(note(i))
    await asyncio.sleep(0.05)
    left = await n.aclose(0.2)
    fake.set_hang(False)
    assert left == 5
    # What the request carried timed out waiting for an answer: Discord may have it, so
    # those are uncertain; any not carried yet are shutdown.
    reasons = {letter.reason for letter in n.dead_letters.letters()}
    assert DeadLetterReason.UNCERTAIN in reasons
    assert reasons <= {DeadLetterReason.UNCERTAIN, DeadLetterReason.SHUTDOWN}
    assert await n.aclose() == 0


async def test_unroutable_and_closed_are_counted(fake: FakeDiscord) -> None:
    """A type no webhook can carry, and sends after close, are counted as dropped."""
    n = notifier(fake, {"security": fake.add_webhook()})
    result = await n.send("general", "nowhere")
    assert result.status is DeliveryStatus.FAILED
    await n.aclose()
    assert (await n.send("security", "late")).status is DeliveryStatus.FAILED
    assert n.stats.snapshot()["dropped"] == {"no_webhook": 1, "closed": 1}


async def test_mentions_configured_for_critical(fake: FakeDiscord) -> None:
    """A role ping configured for critical is in content, with exactly that id allowed."""
    n = notifier(fake, {"general": fake.add_webhook()}, mentions="critical=role:42")
    await n.send("critical", "down")
    await n.aclose()
    payload = fake.messages[0].payload
    assert payload["content"] == "<@&42>"
    assert payload["allowed_mentions"] == {"parse": [], "roles": ["42"]}


async def test_half_open_probe_answered_429_does_not_stall_the_lane(fake: FakeDiscord) -> None:
    """A half-open circuit whose probe gets a 429 probes again instead of waiting forever."""
    url = fake.add_webhook()
    webhook_id = url.split("/")[-2]
    fake.set_status_override(webhook_id, 502)
    n = notifier(fake, {"general": url}, retry_attempts=2, circuit_threshold=1)
    assert not (await asyncio.wait_for(n.send("general", "opens"), FAILSAFE)).ok
    fake.set_status_override(webhook_id, None)
    await asyncio.sleep(0.35)  # circuit_reset: half-open now
    fake.force_429(1, retry_after=0.05)
    result = await asyncio.wait_for(n.send("general", "after"), FAILSAFE)
    await n.aclose()
    assert result.ok


async def test_unknown_engine_option_is_refused(fake: FakeDiscord) -> None:
    """A misspelt timing option is an error, not silently ignored."""
    from discord_logging.errors import ConfigurationError
    from discord_logging.settings import load_settings

    settings = load_settings(webhooks={"general": fake.add_webhook()}, allowed_hosts=fake.host)
    with pytest.raises(ConfigurationError, match="probe_intervall"):
        Notifier(settings, probe_intervall=3)


async def test_discord_channel_implements_notification_channel(fake: FakeDiscord) -> None:
    """DiscordChannel is the NotificationChannel for Discord: one result per notification."""
    from discord_logging.delivery.notification_channel import DiscordChannel
    from discord_logging.notification import NotificationChannel

    channel = DiscordChannel(notifier(fake, {"general": fake.add_webhook()}))
    assert isinstance(channel, NotificationChannel)
    results = await channel.send([note(1), note(2)])
    await channel.aclose()
    assert [r.status for r in results] == [DeliveryStatus.DELIVERED] * 2
