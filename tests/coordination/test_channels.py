"""Channel discovery's pure part: webhook -> window key, the stand-in and the retries."""

from __future__ import annotations

import pytest

from discord_logging.transport.channels import ChannelDirectory, WebhookChannel


def test_the_webhook_stands_in_until_discord_answers() -> None:
    """Before the lookup, the webhook id keys its window; after it, the channel does."""
    directory = ChannelDirectory()
    assert directory.key("1") == "webhook:1"
    assert directory.lookup_due("1", now=0.0)
    directory.learned("1", "500", "900")
    assert directory.key("1") == "channel:500"
    assert directory.channel("1") == WebhookChannel("500", "900")
    assert not directory.lookup_due("1", now=0.0)


def test_webhooks_in_one_channel_share_its_key() -> None:
    """Two webhooks Discord puts in one channel share one window; another channel does not."""
    directory = ChannelDirectory()
    directory.learned("1", "500")
    directory.learned("2", "500")
    directory.learned("3", "600")
    assert directory.key("1") == directory.key("2") != directory.key("3")
    assert directory.sharing() == {"500": ["1", "2"]}


def test_a_thread_is_its_own_channel_without_any_lookup() -> None:
    """Posting into a thread keys the thread, whatever the parent channel is."""
    directory = ChannelDirectory()
    assert directory.key("1", thread_id="42") == "channel:42"
    directory.learned("1", "500")
    assert directory.key("1", thread_id="42") == "channel:42"
    assert directory.key("1") == "channel:500"


@pytest.mark.parametrize(
    ("failures", "retry_at"),
    [(1, 30.0), (2, 100.0 + 60.0), (3, 200.0 + 120.0), (10, 900.0 + 3600.0)],
)
def test_failed_lookups_are_retried_later_and_later(failures: int, retry_at: float) -> None:
    """30 s after the first failure, doubling each time up to an hour."""
    directory = ChannelDirectory()
    times = [0.0, 100.0, 200.0, 300.0, 400.0, 500.0, 600.0, 700.0, 800.0, 900.0]
    for now in times[:failures]:
        at = directory.failed("1", now)
    assert at == retry_at
    assert not directory.lookup_due("1", retry_at - 0.1)
    assert directory.lookup_due("1", retry_at)
    assert directory.key("1") == "webhook:1"
    directory.learned("1", "500")
    assert not directory.lookup_due("1", retry_at)


async def test_a_slot_taken_before_the_channel_was_learned_still_counts_after() -> None:
    """A request sent under the webhook's stand-in key, answered after the channel was
    learned, is restamped in the stand-in window only: requests under the channel key must
    count that window too, or one more message than the channel allows goes out."""
    from discord_logging.coordination import Grant
    from discord_logging.coordination.ledger import Limits
    from discord_logging.coordination.local import LocalCoordinator

    now = [0.0]
    coordinator = LocalCoordinator(
        Limits(channel_limit=2, channel_window=10.0), clock=lambda: now[0]
    )
    first = await coordinator.acquire("webhook:42", "42")
    assert isinstance(first, Grant)
    await coordinator.merge_window("webhook:42", "channel:7")  # learned while in flight
    now[0] = 5.0
    await coordinator.complete(first, None)  # answered at 5 s: restamped under the stand-in
    now[0] = 10.5  # the merged copy (stamped at 0 s) left the channel window; the answer not
    second = await coordinator.acquire("channel:7", "42")
    assert isinstance(second, Grant)
    await coordinator.complete(second, None)
    now[0] = 10.6
    assert not isinstance(await coordinator.acquire("channel:7", "42"), Grant)  # 2 in 10 s
