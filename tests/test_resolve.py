"""Resolving an incident from code, against FakeDiscord over HTTP: its message is edited to
say resolved, by whom and when, and the next record of the same fingerprint opens a new
incident with a message of its own."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import socket
from pathlib import Path

from waiting import wait_for

from discord_logging import DiscordHandler
from discord_logging.capture.direct import build_notification
from discord_logging.delivery.notifier import Notifier
from discord_logging.testing import FakeDiscord
from discord_logging.testing._models import StoredMessage


def shown(fake: FakeDiscord, index: int) -> StoredMessage:
    """The ``index``-th message posted, as a reader sees it now (after edits)."""
    message = fake.message(fake.messages[index].message_id)
    assert message is not None
    return message


def test_resolve_edits_the_incident_and_the_next_record_opens_a_new_one(
    fast_discord: FakeDiscord, tmp_path: Path
) -> None:
    """handler.resolve(key, note=...) edits the incident's message (title, who, when, note);
    the repeat it held back is not lost; the next record of the key is a new message."""
    fake = fast_discord
    handler = DiscordHandler(
        webhooks={"error": fake.add_webhook()},
        allowed_hosts=fake.host,
        store_path=tmp_path / "store",
        aggregate_window=600,
        engine_options={"channel_window": 1.0, "rand": lambda: 0.0},
    )
    log = logging.getLogger("resolve.test")
    log.addHandler(handler)
    log.propagate = False
    try:
        group = {"fingerprint": "db-down"}
        log.error("database unreachable", extra=group)
        log.error("database unreachable (retry)", extra=group)  # held back by the incident
        assert wait_for(lambda: len(fake.messages) == 1)
        assert handler.resolve("db-down", note="failover done", timeout=30)
        edited = shown(fake, 0).embeds[0]
        assert edited["title"].startswith("Resolved: ")
        resolved = {f["name"]: f["value"] for f in edited["fields"]}["Resolved"]
        assert f"{socket.gethostname()} (pid {os.getpid()})" in resolved
        assert resolved.endswith(": failover done")
        assert " UTC" in resolved
        log.error("database unreachable again", extra=group)
        assert handler.flush(30)
        assert len(fake.messages) == 2
        assert fake.messages[1].message_id != fake.messages[0].message_id
        assert not fake.messages[1].embeds[0]["title"].startswith("Resolved")
        stats = handler.stats()
        # The repeat held back went out with the incident's end (not folded into the next).
        assert stats["delivered"] == stats["emitted"] == 3
    finally:
        log.removeHandler(handler)
        handler.close()


def test_resolving_an_unknown_incident_edits_nothing(fast_discord: FakeDiscord) -> None:
    """A fingerprint this process never posted: False, and no request is made."""
    handler = DiscordHandler(
        webhooks={"general": fast_discord.add_webhook()}, allowed_hosts=fast_discord.host
    )
    try:
        assert handler.resolve("never-seen", timeout=30) is False
        assert fast_discord.edits == []
    finally:
        handler.close()


def test_notifier_resolve_edits_the_message_of_a_notification(fast_discord: FakeDiscord) -> None:
    """Notifier.resolve(fingerprint) from async code edits the message that showed it."""
    url = fast_discord.add_webhook()

    async def scenario() -> str:
        async with Notifier(webhooks={"general": url}, allowed_hosts=fast_discord.host) as notifier:
            sent = build_notification("general", "cache cold", "misses climbing")
            sent = dataclasses.replace(sent, fingerprint="cache-cold")
            result = await notifier.send_notification(sent)
            assert result.ok
            assert await notifier.resolve("cache-cold", note="warmed")
            return str(result.message_id)

    message_id = asyncio.run(scenario())
    message = fast_discord.message(message_id)
    assert message is not None
    assert message.embeds[0]["title"] == "Resolved: cache cold"
