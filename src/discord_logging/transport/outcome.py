"""What a Discord response means for the sender: one place decides, from status, headers, body.

See ../shared/discord-api.md ("Responses and what they mean for a sender").
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final

from ..redaction import redact
from .headers import BAN_COOLDOWN, parse_too_many_requests

RETRYABLE_STATUSES: Final = frozenset({500, 502, 503, 504, 524})
# Gateway answers: a proxy in front of Discord gave up waiting (502 bad gateway, 504 and
# Cloudflare's 524 timeouts), so Discord itself may have created the message meanwhile.
MAYBE_POSTED_STATUSES: Final = frozenset({502, 504, 524})
# Discord's JSON error codes that change what a sender does (discord-api.md).
UNKNOWN_CHANNEL: Final = 10003  # a thread (forum post) that was deleted
UNKNOWN_MESSAGE: Final = 10008  # a message that was deleted: post anew instead of editing
FORUM_NEEDS_THREAD: Final = 220001  # a forum's webhook: each message needs a post title or thread
THREADS_ONLY_IN_FORUMS: Final = 220003  # a post title given to a webhook of a plain channel
DISABLING_STATUSES: Final = frozenset({401, 403, 404})
ERROR_TEXT_LIMIT: Final = 500


class OutcomeKind(StrEnum):
    """The sender's next move."""

    DELIVERED = "delivered"  # record it
    RETRY = "retry"  # 5xx, timeout, connection error: back off and retry
    RATE_LIMITED = "rate_limited"  # 429 from Discord: wait retry_after, retry
    BANNED = "banned"  # 429 from Cloudflare: every lane cools off for minutes
    TOO_LARGE = "too_large"  # 413: resend smaller
    POISON = "poison"  # 400 and other 4xx: never retry as is
    DISABLED = "disabled"  # 401/403/404: stop using this webhook


@dataclass(frozen=True, slots=True)
class Outcome:
    """A classified response. ``error`` is Discord's message (redacted), for the operator."""

    kind: OutcomeKind
    status: int | None = None
    retry_after: float | None = None
    is_global: bool = False
    message_id: str | None = None
    error: str | None = None
    error_code: int | None = None
    may_have_posted: bool = False
    """The request may have reached Discord and created its message, but the answer was
    lost (a gateway timeout, a read timeout, a connection dropped after sending): a retry
    must say it may repeat an earlier message (docs/architecture.md, rule 3)."""
    channel_id: str | None = None  # a delivered message's channel: a forum post's thread
    attachment_ids: tuple[str, ...] = ()  # a delivered message's files, kept by an edit

    def refused_for(self, code: int) -> bool:
        """Whether Discord refused the request with JSON error ``code``."""
        return self.kind is not OutcomeKind.DELIVERED and self.error_code == code


def _json(body: bytes) -> Any:
    try:
        return json.loads(body) if body else None
    except (ValueError, UnicodeDecodeError):
        return None


def _error(data: Any, body: bytes) -> tuple[str | None, int | None]:
    if isinstance(data, dict):
        code = data.get("code")
        text = json.dumps(data, ensure_ascii=False) if "errors" in data else data.get("message")
        return (
            redact(str(text))[:ERROR_TEXT_LIMIT] if text else None,
            code if isinstance(code, int) else None,
        )
    text = redact(body[: ERROR_TEXT_LIMIT * 4].decode("utf-8", "replace")).strip()
    return (text[:ERROR_TEXT_LIMIT] or None), None


def classify(
    status: int, headers: Mapping[str, str], body: bytes, *, ban_cooldown: float = BAN_COOLDOWN
) -> Outcome:
    """Classify one HTTP response to Execute Webhook."""
    data = _json(body)
    if 200 <= status < 300:
        if not isinstance(data, dict):
            return Outcome(OutcomeKind.DELIVERED, status)
        message_id, channel_id = data.get("id"), data.get("channel_id")
        files = data.get("attachments")
        return Outcome(
            OutcomeKind.DELIVERED,
            status,
            message_id=str(message_id) if message_id else None,
            channel_id=str(channel_id) if channel_id else None,
            attachment_ids=tuple(str(f["id"]) for f in files if isinstance(f, dict) and f.get("id"))
            if isinstance(files, list)
            else (),
        )
    error, code = _error(data, body)
    if status == 429:
        limited = parse_too_many_requests(headers, body, ban_cooldown=ban_cooldown)
        kind = OutcomeKind.BANNED if limited.cloudflare else OutcomeKind.RATE_LIMITED
        return Outcome(
            kind, status, limited.retry_after, limited.is_global, error=error, error_code=code
        )
    if status in RETRYABLE_STATUSES:
        return Outcome(
            OutcomeKind.RETRY,
            status,
            error=error,
            error_code=code,
            may_have_posted=status in MAYBE_POSTED_STATUSES,
        )
    if status == 413:
        return Outcome(OutcomeKind.TOO_LARGE, status, error=error, error_code=code)
    if status in DISABLING_STATUSES:
        return Outcome(OutcomeKind.DISABLED, status, error=error, error_code=code)
    return Outcome(OutcomeKind.POISON, status, error=error, error_code=code)


def transport_failure(description: str, *, may_have_posted: bool = False) -> Outcome:
    """A timeout or connection error: retryable, like a 5xx."""
    return Outcome(
        OutcomeKind.RETRY,
        None,
        error=redact(description)[:ERROR_TEXT_LIMIT],
        may_have_posted=may_have_posted,
    )
