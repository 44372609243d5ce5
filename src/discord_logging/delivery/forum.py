"""Forum and media channels: where each message of a lane goes there (pure, per lane).

A forum's webhook cannot post into the channel itself: each message opens a post
(``thread_name``, with the forum's ``applied_tags``) or names one (``thread_id``). Nothing
about the webhook says it is a forum's; only Discord's answer does: 400 code 220001 (discord-
api.md, "Forum and media channels, threads"). So a lane learns it from that answer, unless
``DISCORD_FORUM`` says so up front. Each new incident opens its own post; its later messages
go into that post.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..config.alert_options import TAGS_MAX
from ..render.packing import OutgoingMessage
from ..transport.webhook_url import WebhookURL
from .incidents import IncidentBoard, IncidentConfig


@dataclass(frozen=True, slots=True)
class PostTarget:
    """Where one Execute Webhook request goes: into a thread (``thread_id``), a new forum
    post (``post_title``, ``applied_tags``), or (neither) where the URL says."""

    thread_id: str | None = None
    post_title: str | None = None
    applied_tags: tuple[str, ...] = ()


class ForumPosts:
    """Whether a lane's webhook posts into a forum channel, and the target of each message."""

    def __init__(self, names: tuple[str, ...], config: IncidentConfig, url: WebhookURL) -> None:
        self.configured = any(name in config.forum for name in names)
        self.learned = False
        """Discord answered 220001: the webhook is a forum's, though not configured as one."""
        self._tags = config.forum_tags
        self._fixed_thread = url.thread_id  # a URL with ?thread_id= always posts there

    @property
    def is_forum(self) -> bool:
        """Whether messages must open or name a post."""
        return self.configured or self.learned

    def learn(self) -> None:
        """Discord said the webhook is a forum's (400 code 220001)."""
        self.learned = True

    def target(self, message: OutgoingMessage, board: IncidentBoard) -> PostTarget:
        """Where ``message`` goes: an incident's update into the post its first record opened;
        anything else opens a post of its own, titled and tagged for what it carries."""
        if not self.is_forum or self._fixed_thread:
            return PostTarget()
        first = message.notifications[0]
        thread = board.thread_of(first.fingerprint) if first.fingerprint else None
        if thread is not None and first.is_update:
            return PostTarget(thread_id=thread)
        return PostTarget(
            post_title=message.post_title or first.title[:100], applied_tags=self.tags(message)
        )

    def tags(self, message: OutgoingMessage) -> tuple[str, ...]:
        """The tags of the message's alert types, in the order of its records, at most 5."""
        tags: dict[str, None] = {}
        for notification in message.notifications:
            for tag in self._tags.get(notification.alert_type, ()):
                tags.setdefault(tag, None)
        return tuple(tags)[:TAGS_MAX]
