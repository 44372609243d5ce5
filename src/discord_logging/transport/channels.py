"""Which channel each webhook posts into: the key of the hidden per-channel window.

Discord counts its hidden limit (about 30 messages a minute) per channel, so webhooks in one
channel must share one window, and a thread is a channel of its own. The worker asks Discord
(``GET`` on the webhook URL returns ``channel_id`` and ``guild_id``, posting nothing); until the
answer arrives, or when the lookup fails, the webhook id stands in and the lookup is retried
later, with a growing interval. Pure: the HTTP call is the client's, times are passed in.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

FIRST_RETRY: Final = 30.0
MAX_RETRY: Final = 3600.0


@dataclass(frozen=True, slots=True)
class WebhookChannel:
    """What Discord said about a webhook."""

    channel_id: str
    guild_id: str | None = None


@dataclass(slots=True)
class _Lookup:
    failures: int = 0
    retry_at: float = 0.0


class ChannelDirectory:
    """Webhook id -> channel key, with the webhook id standing in until the channel is known."""

    def __init__(self, *, first_retry: float = FIRST_RETRY, max_retry: float = MAX_RETRY) -> None:
        self.first_retry = first_retry
        self.max_retry = max_retry
        self._known: dict[str, WebhookChannel] = {}
        self._lookups: dict[str, _Lookup] = {}

    def key(self, webhook_id: str, thread_id: str | None = None) -> str:
        """The window key of a request: the thread's when posting into one (a thread is its own
        channel, whatever its parent), else the webhook's channel, else the webhook itself."""
        if thread_id:
            return f"channel:{thread_id}"
        known = self._known.get(webhook_id)
        if known is not None:
            return f"channel:{known.channel_id}"
        return f"webhook:{webhook_id}"

    def channel(self, webhook_id: str) -> WebhookChannel | None:
        """What Discord said about ``webhook_id``, if it answered yet."""
        return self._known.get(webhook_id)

    def lookup_due(self, webhook_id: str, now: float) -> bool:
        """Whether the worker should ask Discord about ``webhook_id`` now."""
        if webhook_id in self._known:
            return False
        lookup = self._lookups.get(webhook_id)
        return lookup is None or now >= lookup.retry_at

    def learned(self, webhook_id: str, channel_id: str, guild_id: str | None = None) -> None:
        """Discord answered: ``webhook_id`` posts into ``channel_id``."""
        self._known[webhook_id] = WebhookChannel(channel_id, guild_id)
        self._lookups.pop(webhook_id, None)

    def failed(self, webhook_id: str, now: float) -> float:
        """The lookup failed at ``now`` (timeout, 5xx, 429, no ``channel_id``); returns when to
        ask again: ``first_retry`` seconds later, doubling up to ``max_retry``."""
        lookup = self._lookups.setdefault(webhook_id, _Lookup())
        interval = min(self.max_retry, self.first_retry * 2**lookup.failures)
        lookup.failures += 1
        lookup.retry_at = now + interval
        return lookup.retry_at

    def sharing(self) -> dict[str, list[str]]:
        """Channel id -> the known webhooks posting into it, for channels with several (what
        ``check`` warns about: they share one window of ``DISCORD_RATE_LIMIT``)."""
        by_channel: dict[str, list[str]] = {}
        for webhook_id, known in self._known.items():
            by_channel.setdefault(known.channel_id, []).append(webhook_id)
        return {c: sorted(ids) for c, ids in by_channel.items() if len(ids) > 1}
