"""Discord-shaped answers: headers, error bodies, 429s and the message object."""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

from discord_logging.testing._http import Outgoing

if TYPE_CHECKING:
    from discord_logging.testing._limits import FixedWindow
    from discord_logging.testing._models import StoredMessage
    from discord_logging.testing._posted import Webhook

# Discord gives every webhook the same Bucket string (webhooks are a top-level resource keyed
# by id + token), so a client must not key its limiter on Bucket alone.
BUCKET = "41f9cd5d28af77da04563bcb1d67fdfd"

# Every answer from Discord itself passes Google's load balancer and carries this header; a
# 429 without it comes from Cloudflare (an IP ban), not from Discord's rate limiter.
VIA = ("Via", "1.1 google")

_ERRORS: dict[int, tuple[str, int]] = {
    401: ("Invalid Webhook Token", 50027),
    403: ("Missing Permissions", 50013),
    404: ("Unknown Webhook", 10015),
    413: ("Request entity too large", 40005),
}


@dataclass
class Context:
    """The request being answered, and what the answer reported."""

    method: str
    path: str
    webhook_id: str | None
    now: float
    bucket: FixedWindow | None = None
    code: int | None = None


def json_response(
    ctx: Context,
    status: int,
    body: dict[str, Any] | None,
    *,
    headers: list[tuple[str, str]] | None = None,
    remaining: int | None = None,
    reset_after: float | None = None,
) -> Outgoing:
    """A Discord answer: ``Via``, the webhook's X-RateLimit-* headers, JSON body (none for 204)."""
    out = [VIA]
    if ctx.bucket is not None:
        bucket = ctx.bucket
        left = bucket.remaining(ctx.now) if remaining is None else remaining
        after = bucket.reset_after(ctx.now) if reset_after is None else reset_after
        out += [
            ("X-RateLimit-Bucket", BUCKET),
            ("X-RateLimit-Limit", str(bucket.limit)),
            ("X-RateLimit-Remaining", str(left)),
            # Reset is wall-clock epoch seconds; Reset-After is relative (no clock skew).
            ("X-RateLimit-Reset", f"{time.time() + after:.3f}"),
            ("X-RateLimit-Reset-After", f"{after:.3f}"),
        ]
    out += headers or []
    if body is None or status == 204:
        return Outgoing(status, out)
    code = body.get("code")
    ctx.code = code if isinstance(code, int) else None
    out.append(("Content-Type", "application/json"))
    return Outgoing(status, out, json.dumps(body).encode())


def rate_limited(
    ctx: Context,
    retry_after: float,
    *,
    is_global: bool = False,
    forced: bool = False,
    scope: str = "user",
) -> Outgoing:
    """A Discord 429: JSON ``retry_after`` in float seconds, ``Retry-After`` whole seconds up.
    ``scope`` is ``user`` for the webhook's bucket, ``shared`` for the hidden channel limit."""
    retry_after = max(retry_after, 0.001)
    body: dict[str, Any] = {
        "message": "You are being rate limited.",
        "retry_after": round(retry_after, 3),
        "global": is_global,
    }
    headers = [("Retry-After", str(math.ceil(retry_after)))]
    if is_global:
        headers += [("X-RateLimit-Global", "true"), ("X-RateLimit-Scope", "global")]
    else:
        headers.append(("X-RateLimit-Scope", scope))
    if forced and not is_global:
        return json_response(ctx, 429, body, headers=headers, remaining=0, reset_after=retry_after)
    return json_response(ctx, 429, body, headers=headers)


def error(ctx: Context, status: int) -> Outgoing:
    """Discord's answer for ``status`` with its usual JSON error body."""
    if status == 429:
        return rate_limited(ctx, 1.0, forced=True)
    if status == 204:
        return json_response(ctx, 204, None)
    message, code = _ERRORS.get(status, ("", 0))
    if not message:
        try:
            message = f"{status}: {HTTPStatus(status).phrase}"
        except ValueError:
            message = f"{status}: Error"
    return json_response(ctx, status, {"message": message, "code": code})


def not_found(ctx: Context) -> Outgoing:
    """Any path that is not a webhook route."""
    return json_response(ctx, 404, {"message": "404: Not Found", "code": 0})


def method_not_allowed(ctx: Context) -> Outgoing:
    """A webhook route with a method the fake does not serve."""
    return json_response(ctx, 405, {"message": "405: Method Not Allowed", "code": 0})


def cloudflare_ban(retry_after: float) -> Outgoing:
    """Cloudflare's 1015 page: a 429 with NO ``Via`` header and an HTML body, no JSON."""
    headers = [
        ("Content-Type", "text/html; charset=UTF-8"),
        ("Retry-After", str(math.ceil(retry_after))),
    ]
    return Outgoing(429, headers, b"error code: 1015")


def message_object(message: StoredMessage, hook: Webhook) -> dict[str, Any]:
    """A message as Discord returns it: the answer to ``wait=true``, to ``GET`` and to an edit.
    ``channel_id`` is where it is: a forum post's (or ``?thread_id=``'s) thread."""
    payload = message.payload
    return {
        "id": message.message_id,
        "type": 0,
        "channel_id": message.channel_id,
        "content": payload.get("content") or "",
        # Webhook embeds are always of type "rich".
        "embeds": [{**embed, "type": "rich"} for embed in message.embeds],
        "attachments": [
            {"id": a["id"], "filename": a["filename"], "size": a["size"]}
            for a in message.attachments
        ],
        "author": {
            "id": message.webhook_id,
            "username": payload.get("username") or hook.name,
            "avatar": None,
            "discriminator": "0000",
            "bot": True,
        },
        "timestamp": datetime.now(UTC).isoformat(),
        "edited_timestamp": datetime.now(UTC).isoformat() if message.edits else None,
        "tts": bool(payload.get("tts", False)),
        "mention_everyone": False,
        "mentions": [],
        "mention_roles": [],
        "pinned": False,
        "flags": payload.get("flags") or 0,
        "components": message.components,
        "webhook_id": message.webhook_id,
    }


def webhook_object(
    webhook_id: str, token: str, channel_id: str, name: str, *, guild_id: str | None = None
) -> dict[str, Any]:
    """The webhook, as ``GET`` on its URL returns it (``channel_id`` is how a client learns
    which webhooks share a channel's hidden limit)."""
    return {
        "type": 1,
        "id": webhook_id,
        "name": name,
        "avatar": None,
        "channel_id": channel_id,
        "guild_id": guild_id,
        "application_id": None,
        "token": token,
    }
