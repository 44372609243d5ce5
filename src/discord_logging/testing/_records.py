"""What the fake accepted and answered, queried by tests (a mixin of
:class:`~discord_logging.testing._server.FakeDiscord`)."""

from __future__ import annotations

import threading
from collections import Counter

from discord_logging.testing._models import ReceivedMessage, RequestRecord
from discord_logging.testing._posted import Webhook


class Records:
    """Accepted messages and answered requests."""

    _lock: threading.Lock
    _messages: list[ReceivedMessage]
    _requests: list[RequestRecord]
    _webhooks: dict[str, Webhook]
    _buffer: int
    channel_window: float

    @property
    def messages(self) -> list[ReceivedMessage]:
        """A copy of the accepted messages, in order of acceptance."""
        with self._lock:
            return list(self._messages)

    @property
    def requests(self) -> list[RequestRecord]:
        """A copy of the records of every answered request, in order."""
        with self._lock:
            return list(self._requests)

    @property
    def pending(self) -> int:
        """Requests received but not yet answered because of ``set_hang``, ``set_latency`` or
        ``set_silent``."""
        with self._lock:
            return self._buffer

    def messages_for(self, webhook_id: str | int) -> list[ReceivedMessage]:
        """Accepted messages of one webhook, in order."""
        wid = str(webhook_id)
        return [m for m in self.messages if m.webhook_id == wid]

    def count_status(self, status: int, webhook_id: str | int | None = None) -> int:
        """How many answers had ``status`` (for one webhook, or all requests)."""
        wid = None if webhook_id is None else str(webhook_id)
        return sum(
            1 for r in self.requests if r.status == status and (wid is None or r.webhook_id == wid)
        )

    def channel_of(self, webhook_id: str | int) -> str:
        """The channel a registered webhook posts into (without ``thread_id``)."""
        with self._lock:
            return self._webhooks[str(webhook_id)].channel_id

    def messages_in(self, channel_id: str | int) -> list[ReceivedMessage]:
        """Accepted messages posted in one channel (or thread), by any webhook, in order."""
        cid = str(channel_id)
        return [m for m in self.messages if m.channel_id == cid]

    def peak_per_channel(self, window: float | None = None) -> dict[str, int]:
        """Channel -> most messages accepted in any ``window`` seconds (default: the hidden
        limit's window), the figure Discord's hidden limit is about."""
        span = self.channel_window if window is None else window
        times: dict[str, list[float]] = {}
        for message in self.messages:
            times.setdefault(message.channel_id or "", []).append(message.received_at)
        return {channel: most_in_window(stamps, span) for channel, stamps in times.items()}

    def peak_requests(self, window: float | None = None) -> int:
        """Most requests answered (posts, edits, reads, any answer) in any ``window`` seconds
        (default: the hidden limit's window)."""
        span = self.channel_window if window is None else window
        return most_in_window([r.time for r in self.requests], span)

    def rate_limited_by_scope(self) -> Counter[str]:
        """429s answered, by scope: ``shared`` (the hidden channel limit), ``user`` (the
        webhook's bucket, and forced ones), ``global``, ``cloudflare`` (the ban page)."""
        return Counter(
            r.scope or ("cloudflare" if not r.had_via else "unknown")
            for r in self.requests
            if r.status == 429
        )


def most_in_window(stamps: list[float], window: float) -> int:
    """Most of ``stamps`` in any ``window`` seconds (a sliding window over them, sorted)."""
    ordered = sorted(stamps)
    first = peak = 0
    for last, stamp in enumerate(ordered):
        while ordered[first] <= stamp - window:
            first += 1
        peak = max(peak, last - first + 1)
    return peak
