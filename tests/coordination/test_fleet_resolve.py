"""An incident the fleet shares is ended by hand (``resolve``) for every holder: whoever
resolves it edits the fleet's message, and the next record of any holder opens a new one."""

from __future__ import annotations

import logging
from pathlib import Path

from waiting import wait_for

from discord_logging import DiscordHandler
from discord_logging.testing import FakeDiscord


def holder(
    fake: FakeDiscord, url: str, store: Path, name: str
) -> tuple[DiscordHandler, logging.Logger]:
    """A handler of its own (a holder of the store) on logger ``name``."""
    handler = DiscordHandler(
        webhooks={"error": url},
        allowed_hosts=fake.host,
        store_path=store,
        aggregate_window=600,
        engine_options={"channel_window": 1.0, "rand": lambda: 0.0},
    )
    log = logging.getLogger(f"fleet-resolve.{name}")
    log.addHandler(handler)
    log.propagate = False
    return handler, log


def test_a_holder_that_did_not_post_resolves_the_fleets_incident(
    fast_discord: FakeDiscord, tmp_path: Path
) -> None:
    """Two holders of one store log one problem: one message. The one that joined resolves
    it: that message says resolved; the next record, from the other, is a new message."""
    fake = fast_discord
    url = fake.add_webhook()
    first, first_log = holder(fake, url, tmp_path / "store", "first")
    second, second_log = holder(fake, url, tmp_path / "store", "second")
    group = {"fingerprint": "db-down"}
    try:
        first_log.error("database unreachable", extra=group)
        assert wait_for(lambda: len(fake.messages) == 1)
        second_log.error("database unreachable", extra=group)
        assert second.flush(30)
        assert len(fake.messages) == 1  # it joined the first holder's message
        assert second.resolve("db-down", note="failover done", timeout=30)
        resolved = fake.message(fake.messages[0].message_id)
        assert resolved is not None
        assert resolved.embeds[0]["title"].startswith("Resolved: ")
        first_log.error("database unreachable again", extra=group)
        assert first.flush(30)
        assert len(fake.messages) == 2
        assert not fake.messages[1].embeds[0]["title"].startswith("Resolved")
    finally:
        first.close()
        second.close()
