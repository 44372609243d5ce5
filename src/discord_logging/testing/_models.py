"""What the fake records: accepted messages and every request it answered."""

from __future__ import annotations

from dataclasses import dataclass, field
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

    @property
    def flags(self) -> int:
        """The message flags sent (4096: silent, no push notification)."""
        flags = self.payload.get("flags")
        return flags if isinstance(flags, int) else 0

    @property
    def components(self) -> list[dict[str, Any]]:
        """The components kept: only sent with ``?with_components=true`` (else Discord
        drops them, and so does the fake)."""
        components = self.payload.get("components")
        return list(components) if isinstance(components, list) else []

    @property
    def post_title(self) -> str | None:
        """The ``thread_name`` that opened a forum post, or None."""
        name = self.payload.get("thread_name")
        return name if isinstance(name, str) else None


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


@dataclass
class ForumPost:
    """A post (thread) of a forum channel, opened by a message with ``thread_name``; its id
    is the id of that starter message."""

    thread_id: str
    forum_id: str
    name: str
    applied_tags: tuple[str, ...] = ()


@dataclass
class StoredMessage:
    """A message as readers see it now: created by a POST, changed by edits (``PATCH``),
    gone after a ``DELETE`` (or :meth:`FakeDiscord.delete_message`)."""

    message_id: str
    webhook_id: str
    channel_id: str
    """Where it is: the channel, or the thread it was posted into."""
    thread_id: str | None
    """The thread it is in (a forum post, or ``?thread_id=``); edits must name it."""
    payload: dict[str, Any]
    attachments: list[dict[str, Any]] = field(default_factory=list)
    """``id``, ``filename``, ``size`` and the ``data`` of each file it carries."""
    created_at: float = 0.0
    edited_at: float | None = None
    edits: int = 0

    @property
    def embeds(self) -> list[dict[str, Any]]:
        """Its embeds now."""
        embeds = self.payload.get("embeds")
        return list(embeds) if isinstance(embeds, list) else []

    @property
    def components(self) -> list[dict[str, Any]]:
        """Its components now (link buttons in action rows)."""
        components = self.payload.get("components")
        return list(components) if isinstance(components, list) else []

    @property
    def files(self) -> dict[str, bytes]:
        """Its files now, by filename."""
        return {a["filename"]: a["data"] for a in self.attachments}


@dataclass(frozen=True)
class EditRecord:
    """An edit the fake accepted."""

    webhook_id: str
    message_id: str
    payload: dict[str, Any]
    received_at: float
