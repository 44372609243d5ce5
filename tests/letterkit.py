"""Dead letters for tests: a letter is kept for a webhook identity (its destination), and only
a lane posting to that identity redelivers it."""

from __future__ import annotations

from urllib.parse import urlsplit

from discord_logging.transport.webhook_url import parse_webhook_url

# A destination for store tests that never post: any identity works there.
DESTINATION = "w1-0123456789ab"


def destination_of(url: str) -> str:
    """The webhook identity of ``url`` (a FakeDiscord or Discord webhook URL)."""
    return parse_webhook_url(url, urlsplit(url).netloc).identity
