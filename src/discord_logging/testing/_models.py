"""What the fake records: accepted messages and every request it answered."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ReceivedMessage:
    """A message the fake accepted (answered 200/204), as Discord would have posted it."""

    webhook_id: str
    message_id: str
    payload: dict[str, Any]
    files: dict[str, tuple[str, bytes]]
    """Multipart part name (``files[0]``...) -> (filename, content)."""
    thread_id: str | None
    received_at: float
    """The fake's clock at acceptance (``time.monotonic`` unless a clock was injected)."""
    channel_id: str | None = None
    """The channel it was posted in: the thread's id when posted into a thread."""

    @property
    def embeds(self) -> list[dict[str, Any]]:
        """The payload's embeds (empty list when there are none)."""
        embeds = self.payload.get("embeds")
        return list(embeds) if isinstance(embeds, list) else []

    @property
    def content(self) -> str | None:
        """The payload's ``content``, or None when absent."""
        content = self.payload.get("content")
        return content if isinstance(content, str) else None

    @property
    def username(self) -> str | None:
        """The payload's ``username`` override, or None when absent."""
        username = self.payload.get("username")
        return username if isinstance(username, str) else None


@dataclass(frozen=True)
class RequestRecord:
    """One request the fake answered (hung requests released by ``stop()`` are not recorded)."""

    webhook_id: str | None
    """Webhook id from the path; None when the path is not a webhook route."""
    status: int
    time: float
    """The fake's clock when the request was decided."""
    had_via: bool
    """True for Discord's own answers; False for the Cloudflare ban (no ``Via`` header)."""
    method: str = "POST"
    path: str = ""
    scope: str | None = None
    """``X-RateLimit-Scope`` of a 429 (``user``/``global``), else None."""
    code: int | None = None
    """Discord's JSON error ``code`` when the answer carried one."""
