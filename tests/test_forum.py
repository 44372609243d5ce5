"""Forum and media channels against FakeDiscord over HTTP: learned from 220001 or configured,
a post per new incident (title, tags), repeats into its post, a deleted post, check --ping."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from letterkit import destination_of
from waiting import FAILSAFE

from discord_logging import DiscordHandler
from discord_logging.cli import main
from discord_logging.cli.send import Ping, print_pings
from discord_logging.deadletters import DeadLetter, DeadLetterReason, MemoryDeadLetters
from discord_logging.delivery.notifier import Notifier
from discord_logging.notification import DeliveryStatus, NotificationResult
from discord_logging.testing import FakeDiscord
from discord_logging.transport.outcome import OutcomeKind


@pytest.fixture
def fake(fast_discord: FakeDiscord) -> FakeDiscord:
    """Discord's limits on short windows (conftest's fast_discord)."""
    return fast_discord


def notifier(fake: FakeDiscord, url: str, **options: Any) -> Notifier:
    return Notifier(
        webhooks={"error": url},
        allowed_hosts=fake.host,
        channel_window=1.0,
        rand=lambda: 0.0,
        **options,
    )


def wait_for(condition: Callable[[], bool], seconds: float = FAILSAFE) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "the condition was not met in time"
        time.sleep(0.02)


async def test_forum_is_learned_from_220001_and_the_message_sent_again(fake: FakeDiscord) -> None:
    """A forum's webhook not configured as one: Discord's 220001 teaches the lane, the same
    notification opens a post at once (delivered, no dead letter), and later ones open their
    own posts without another refusal."""
    n = notifier(fake, fake.add_webhook(forum=True))
    first = await n.send("error", "disk full on db-1", "90% used")
    second = await n.send("error", "deploy failed", "web-3")
    await n.aclose()
    assert first.ok
    assert second.ok
    assert fake.count_status(400) == 1
    assert [r.code for r in fake.requests if r.status == 400] == [220001]
    assert [post.name for post in fake.threads] == ["disk full on db-1", "deploy failed"]
    assert len(n.dead_letters) == 0
    assert n.stats.get("forum_learned") == 1
    assert n.stats.get("forum_posts") == 2
    assert n.lanes["error"].poster.forum.learned


async def test_configured_forum_opens_titled_tagged_posts_without_a_refusal(
    fake: FakeDiscord, tmp_path: Path
) -> None:
    """DISCORD_FORUM says it up front: no 400; each record opens its own post (one embed
    each, even in a burst), titled by the post_title block and tagged for its type."""
    (tmp_path / "error.j2").write_text(
        '{% extends "base.j2" %}{% block post_title %}[{{ level }}] {{ title }}{% endblock %}',
        encoding="utf-8",
    )
    n = notifier(
        fake,
        fake.add_webhook(forum=True, tags=["111", "222"]),
        forum="error",
        forum_tags={"error": ["222"]},
        templates_dir=tmp_path,
    )
    for i in range(3):
        n.submit(build("error", f"problem {i}"))
    assert await n.flush(FAILSAFE)
    await n.aclose()
    assert fake.count_status(400) == 0
    assert [len(m.embeds) for m in fake.messages] == [1, 1, 1]
    assert [p.name for p in fake.threads] == [f"[INFO] problem {i}" for i in range(3)]
    assert all(p.applied_tags == ("222",) for p in fake.threads)


def build(alert_type: str, title: str) -> Any:
    from discord_logging.capture.direct import build_notification

    return build_notification(alert_type, title, title)


def test_incident_repeats_edit_the_post_s_starter_message(fake: FakeDiscord) -> None:
    """In a forum, an incident's first record opens its post; its updates edit that message
    in the post (thread_id named), and the post shows the count at the end."""
    handler = forum_handler(fake, aggregate_window=0.4, incident_edit_interval=0.05)
    log = attached(handler)
    for i in range(8):
        log.error("replica lag %d s", 40 + i)
        time.sleep(0.02)
    wait_for(lambda: bool(fake.edits) and "quiet" in str(current(fake).embeds))
    handler.close()
    (message,) = fake.messages
    (post,) = fake.threads
    assert message.thread_id == post.thread_id
    assert current(fake).embeds[0]["title"].endswith("(x 8)")
    assert all(r.path.endswith(f"/messages/{message.message_id}") for r in patches(fake))


def test_second_message_goes_into_the_incident_s_post(fake: FakeDiscord) -> None:
    """With second-message updates, the summary is posted into the incident's post
    (thread_id), not as a new post, and is silent."""
    handler = forum_handler(fake, aggregate_window=0.3, incident_updates="message")
    log = attached(handler)
    for _ in range(5):
        log.error("queue full")
    wait_for(lambda: len(fake.messages) == 2)
    handler.close()
    first, summary = fake.messages
    assert len(fake.threads) == 1
    assert summary.thread_id == first.message_id
    assert summary.post_title is None
    assert summary.embeds[0]["title"] == "queue full (x 5)"
    assert summary.flags == 4096


def test_deleted_post_makes_the_next_message_open_a_new_one(fake: FakeDiscord) -> None:
    """The incident's post was deleted: posting into it answers 10003, so the summary opens
    a post of its own; nothing is dead-lettered."""
    handler = forum_handler(fake, aggregate_window=0.5, incident_updates="message")
    log = attached(handler)
    for repeats in (1, 3):  # from one line: one incident
        for _ in range(repeats):
            log.error("cache miss storm")
        if repeats == 1:
            wait_for(lambda: len(fake.threads) == 1)
            fake.delete_thread(fake.threads[0].thread_id)
    wait_for(lambda: len(fake.threads) == 1 and len(fake.messages) == 2)
    handler.close()
    assert [r.code for r in fake.requests if r.status == 404] == [10003]
    assert fake.messages[1].post_title == "cache miss storm"
    assert fake.messages[1].embeds[0]["title"] == "cache miss storm (x 4)"
    assert handler.stats()["dead_lettered"] == 0


def test_post_title_for_a_plain_channel_is_a_poison_letter(fake: FakeDiscord) -> None:
    """DISCORD_FORUM naming a plain channel's type: Discord answers 220003, the record is kept
    for the operator with that code (the fix: remove the type from DISCORD_FORUM)."""
    kept = MemoryDeadLetters()
    n = notifier(fake, fake.add_webhook(), forum="error", dead_letters=kept)
    result = asyncio.run(send_and_close(n))
    assert result.status is DeliveryStatus.DEAD_LETTERED
    (letter,) = kept.letters()
    assert (letter.reason, letter.error_code) == (DeadLetterReason.POISON, 220003)


async def send_and_close(n: Notifier) -> NotificationResult:
    try:
        return await n.send("error", "t", "m")
    finally:
        await n.aclose()


async def test_a_letter_refused_with_220001_goes_out_when_redelivered(fake: FakeDiscord) -> None:
    """A poison letter an earlier version kept with 220001 is delivered by redelivery (what
    `discord-logging flush` does): the lane learns the forum and opens a post."""
    url = fake.add_webhook(forum=True)
    n = notifier(fake, url)
    letter = DeadLetter(
        build("error", "old alert"),
        "error",
        DeadLetterReason.POISON,
        destination=destination_of(url),
    )
    result = await asyncio.wait_for(n.redeliver(letter), FAILSAFE)
    await n.aclose()
    assert result.ok
    assert [p.name for p in fake.threads] == ["old alert"]


async def test_no_slot_for_the_second_send_is_a_retry(fake: FakeDiscord) -> None:
    """When no slot of the limits comes before the close deadline, the message is not sent
    again at once: its outcome is a retry (never a poison letter)."""
    n = notifier(fake, fake.add_webhook(forum=True), rate_limit=1)
    assert (await n.send("error", "fills the window", "m")).ok
    poster = n.lanes["error"].poster
    shared = n.lanes["error"].shared
    shared.closing, shared.deadline = True, shared.clock() + 0.1
    assert await poster._slot(0.1) is None
    shared.closing, shared.deadline = False, None
    await n.aclose()
    assert (await again_without_slot(fake)).outcome.kind is OutcomeKind.RETRY


async def again_without_slot(fake: FakeDiscord) -> Any:
    """``_again`` for a forum learned while the window is full until past the deadline."""
    n = notifier(fake, fake.add_webhook(forum=True), rate_limit=1)
    await n.send("error", "first", "m")  # learns the forum, fills the window
    lane = n.lanes["error"]
    shared = lane.shared
    from discord_logging.render.packing import pack

    message = pack([n.renderer.render(build("error", "second"))], n.renderer.digest_field)
    first = await shared.client.execute(lane.url, message)
    shared.closing, shared.deadline = True, shared.clock() + 0.05
    result = await lane.poster._again(message, None, 0.05, first)
    shared.closing, shared.deadline = False, None
    await n.aclose()
    return result


def test_check_ping_names_a_forum_and_how_to_say_so(
    fake: FakeDiscord, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """check --ping against a forum's webhook succeeds (a post is opened) and explains 220001:
    each alert opens a post; DISCORD_FORUM says so up front."""
    monkeypatch.setenv("DISCORD_WEBHOOK_ERRORS", fake.add_webhook(forum=True))
    monkeypatch.setenv("DISCORD_ALLOWED_HOSTS", fake.host)
    assert main(["check", "--ping"]) == 0
    out = capsys.readouterr().out
    assert "forum" in out
    assert "220001" in out
    assert "DISCORD_FORUM=error" in out
    assert main(["check", "--ping", "--json"]) == 0
    (ping,) = json.loads(capsys.readouterr().out)["ping"]
    assert (ping["webhook"], ping["forum_learned"], ping["status"]) == ("error", True, "delivered")


def test_ping_refused_with_220001_explains_the_forum(capsys: pytest.CaptureFixture[str]) -> None:
    """A ping that still ends in 220001 says the channel is a forum's and what to set, not
    that Discord may be down."""
    result = NotificationResult(
        "x", DeliveryStatus.DEAD_LETTERED, error="must have a thread_name", error_code=220001
    )
    print_pings([Ping("error", result)])
    err = capsys.readouterr().err
    assert "forum" in err
    assert "DISCORD_FORUM=error" in err
    assert "may be down" not in err


# -- helpers -------------------------------------------------------------------------------------


def forum_handler(fake: FakeDiscord, **options: Any) -> DiscordHandler:
    return DiscordHandler(
        webhooks={"error": fake.add_webhook(forum=True)},
        allowed_hosts=fake.host,
        forum="error",
        dead_letters=MemoryDeadLetters(),
        engine_options={"channel_window": 1.0},
        **options,
    )


def attached(handler: DiscordHandler) -> logging.Logger:
    log = logging.getLogger(f"forum.{id(handler)}")
    log.addHandler(handler)
    log.propagate = False
    return log


def current(fake: FakeDiscord) -> Any:
    message = fake.message(fake.messages[0].message_id)
    assert message is not None
    return message


def patches(fake: FakeDiscord) -> list[Any]:
    found = [r for r in fake.requests if r.method == "PATCH"]
    assert found
    return found
