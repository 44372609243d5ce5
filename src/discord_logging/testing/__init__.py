"""Test helpers: :class:`FakeDiscord`, a local HTTP server that behaves like Discord's webhooks.

Usage::

    from discord_logging.testing import FakeDiscord

    with FakeDiscord() as fake:
        url = fake.add_webhook()          # http://127.0.0.1:<port>/api/v10/webhooks/<id>/<token>
        ...                               # point the code under test at `url`
        assert fake.messages[0].embeds[0]["title"] == "boom"

    # A URL whose host needs a name lookup, as discord.com does:
    url = fake.add_webhook(host="localhost")   # http://localhost:<port>/api/v10/...
    allowed_hosts = fake.named_host            # "localhost:<port>"
    # On the IPv6 loopback:
    url = fake.add_webhook(host="::1")         # http://[::1]:<port>/api/v10/...
    allowed_hosts = fake.ipv6_host             # "[::1]:<port>"

To check a payload the way FakeDiscord (and Discord's Execute Webhook) does, without a
server: ``validate(payload, files)`` returns :class:`Accepted` or a :class:`Rejection`.

With pytest, the ``fake_discord`` fixture (plugin registered through the ``pytest11`` entry
point) yields a started ``FakeDiscord`` with Discord's default limits.

The names are imported lazily: pytest imports this package at start-up for the plugin, before
coverage measurement begins, so importing it must not pull in the server modules.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from discord_logging.testing._models import ReceivedMessage, RequestRecord
    from discord_logging.testing._server import FakeDiscord
    from discord_logging.testing._validation import Accepted, Rejection, validate

__all__ = ["Accepted", "FakeDiscord", "ReceivedMessage", "Rejection", "RequestRecord", "validate"]

_HOMES = {
    "FakeDiscord": "discord_logging.testing._server",
    "ReceivedMessage": "discord_logging.testing._models",
    "RequestRecord": "discord_logging.testing._models",
    "Accepted": "discord_logging.testing._validation",
    "Rejection": "discord_logging.testing._validation",
    "validate": "discord_logging.testing._validation",
}


def __getattr__(name: str) -> Any:
    """Import public names on first use (PEP 562)."""
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
