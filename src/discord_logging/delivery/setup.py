"""What a notifier builds from its settings when it starts: the coordinator of the shared
limits, and one lane per webhook."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Final

from ..coordination import Coordinator, Limits, open_coordinator
from ..errors import ConfigurationError
from ..redaction import hide_parts
from ..settings import DiscordSettings
from ..transport.webhook_url import WebhookURL

GLOBAL_WINDOW_MARGIN: Final = 0.1  # seconds added to Discord's 1 s global window, for jitter
# httpx bounds a request's connect, send and answer each by the timeout: a slot older than
# this many timeouts (and a second) has no request out, so a killed process's stops holding
# its webhook's bucket then rather than after a fixed minute.
IN_FLIGHT_TIMEOUTS: Final = 3


def coordinator_for(
    s: DiscordSettings,
    channel_window: float,
    store_dir: Path | None,
    clock: Callable[[], float],
) -> Coordinator:
    """Redis when ``DISCORD_REDIS_URL`` is set (a URL redis-py cannot use is a configuration
    error with every part of it hidden), else the store directory's, else this process's."""
    limits = Limits(
        channel_limit=s.rate_limit,
        channel_window=channel_window,
        global_limit=s.global_rate_limit,
        global_window=1.0 + GLOBAL_WINDOW_MARGIN,
        in_flight_ttl=IN_FLIGHT_TIMEOUTS * s.timeout_seconds + 1.0,
    )
    if s.redis_url is not None:
        secret = s.redis_url.get_secret_value()
        try:
            return open_coordinator(
                limits, redis_url=secret, fleet_size=s.fleet_size, store_dir=store_dir
            )
        except Exception as exc:  # noqa: BLE001 - said with the URL's parts hidden
            raise ConfigurationError(
                f"DISCORD_REDIS_URL could not be used ({type(exc).__name__}: "
                f"{hide_parts(str(exc), secret)}). Fix: write it as "
                "redis://[:password@]host:port/db with a numeric port, and percent-encode "
                "'/', '@', ':' and '%' in the password"
            ) from None
    return open_coordinator(
        limits,
        store_dir=store_dir,
        fleet_size=s.fleet_size,
        clock=None if store_dir is not None else clock,
    )


def lanes_by_webhook(urls: Mapping[str, WebhookURL]) -> list[tuple[tuple[str, ...], WebhookURL]]:
    """The webhooks to run a lane for, each with every alert-type name configured with it
    (same id, token and thread), in configuration order: one lane per webhook."""
    grouped: dict[tuple[str, str, str | None], list[str]] = {}
    first: dict[tuple[str, str, str | None], WebhookURL] = {}
    for name, url in urls.items():
        key = (url.webhook_id, url.token, url.thread_id)
        grouped.setdefault(key, []).append(name)
        first.setdefault(key, url)
    return [(tuple(names), first[key]) for key, names in grouped.items()]
