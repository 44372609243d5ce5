"""Which channel each configured webhook posts into, for ``check``: one ``GET`` per webhook
(posts nothing), and the channels several alert types land in (they share one window of
``DISCORD_RATE_LIMIT``). The delivery engine asks the same question on its own, on the worker.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import httpx

from ..transport.channels import WebhookChannel
from ..transport.client import WebhookClient
from ..transport.webhook_url import WebhookURL


async def lookup_channels(
    urls: Mapping[str, WebhookURL],
    *,
    timeout: float = 10.0,
    transport: httpx.AsyncBaseTransport | None = None,
) -> dict[str, WebhookChannel | str]:
    """Alert type -> the channel its webhook posts into, or why Discord did not say (an error
    text, token redacted). Each distinct webhook is asked once."""
    client = WebhookClient(timeout=timeout, transport=transport)
    try:
        distinct = {(u.webhook_id, u.token, u.thread_id): u for u in urls.values()}
        answers = await asyncio.gather(*(client.lookup(u) for u in distinct.values()))
        by_key = dict(zip(distinct, answers, strict=True))
    finally:
        await client.aclose()
    found: dict[str, WebhookChannel | str] = {}
    for name, url in urls.items():
        answer = by_key[(url.webhook_id, url.token, url.thread_id)]
        if isinstance(answer, WebhookChannel):
            # A thread is a channel of its own for the hidden limit.
            found[name] = (
                WebhookChannel(url.thread_id, answer.guild_id) if url.thread_id else answer
            )
        else:
            found[name] = answer.error or f"HTTP {answer.status}"
    return found


def describe_channels(found: Mapping[str, WebhookChannel | str]) -> dict[str, Any]:
    """``lookup_channels``'s answer as plain data: each alert type's channel (or error), and
    the channels that several alert types share (their messages count in one window)."""
    by_channel: dict[str, list[str]] = {}
    webhooks: dict[str, dict[str, str | None]] = {}
    for name, answer in sorted(found.items()):
        if isinstance(answer, WebhookChannel):
            webhooks[name] = {"channel_id": answer.channel_id, "guild_id": answer.guild_id}
            by_channel.setdefault(answer.channel_id, []).append(name)
        else:
            webhooks[name] = {"error": answer}
    shared = [
        {"channel_id": channel, "alert_types": names}
        for channel, names in sorted(by_channel.items())
        if len(names) > 1
    ]
    return {"webhooks": webhooks, "shared_channels": shared}


def channel_report(urls: Mapping[str, WebhookURL], *, timeout: float = 10.0) -> dict[str, Any]:
    """Look up every webhook's channel and describe it (blocking; for the command line)."""
    return describe_channels(asyncio.run(lookup_channels(urls, timeout=timeout)))
