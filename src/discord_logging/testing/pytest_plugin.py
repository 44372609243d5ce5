"""pytest plugin (entry point ``pytest11: discord_logging``): the ``fake_discord`` fixture.

pytest imports this module at start-up for every test session in any environment where
discord-logging is installed, so it imports nothing heavy at module level: the server is only
imported when a test asks for the fixture.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from discord_logging.testing._server import FakeDiscord

__all__ = ["fake_discord"]


@pytest.fixture
def fake_discord() -> Iterator[FakeDiscord]:
    """A started :class:`FakeDiscord` with Discord's default limits, stopped after the test.

    Register webhooks with ``fake_discord.add_webhook()``; tests that need short rate-limit
    windows or a fake clock construct their own ``FakeDiscord(...)`` instead.
    """
    from discord_logging.testing._server import FakeDiscord

    with FakeDiscord() as fake:
        yield fake
