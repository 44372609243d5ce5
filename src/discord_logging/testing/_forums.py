"""Where a webhook's POST lands: its channel, a thread of it, or a new post of a forum channel
(discord-api.md, "Forum and media channels, threads")."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from discord_logging.testing._models import ForumPost
from discord_logging.testing._posted import Webhook
from discord_logging.testing._validation import Rejection

NEEDS_THREAD: Final = Rejection(
    400,
    {
        "message": "Webhooks posted to forum channels must have a thread_name or thread_id",
        "code": 220001,
    },
)
THREADS_ONLY_IN_FORUMS: Final = Rejection(
    400, {"message": "Webhooks can only create threads in forum channels", "code": 220003}
)
UNKNOWN_CHANNEL: Final = Rejection(404, {"message": "Unknown Channel", "code": 10003})


@dataclass(frozen=True)
class Landing:
    """Where an accepted POST goes."""

    limit_channel: str
    """The channel whose hidden limit counts it: the thread it goes into, else the channel
    (a new forum post counts in its forum: the strictest reading)."""
    thread_id: str | None
    """The thread it is in: ``?thread_id=``, or the post it opens."""
    opened: ForumPost | None = None


def land(
    hook: Webhook,
    payload: dict[str, Any],
    thread_id: str | None,
    threads: dict[str, ForumPost],
    new_id: str,
) -> Landing | Rejection:
    """Where ``hook`` posts ``payload``. A forum's webhook cannot post into the channel
    itself: it opens a post (``thread_name``, with ``applied_tags`` among the forum's tags)
    or names one (``thread_id``; a deleted one is 10003 Unknown Channel); neither is 400 code
    220001. ``thread_name`` elsewhere is 400 code 220003. Nothing about the webhook says it is a
    forum's: only this answer does. ``new_id`` is the id of the post it would open."""
    name = payload.get("thread_name")
    channel_id, tags = hook.channel_id, hook.tags
    if not hook.forum:
        if name:
            return THREADS_ONLY_IN_FORUMS
        return Landing(thread_id or channel_id, thread_id)
    if thread_id:
        post = threads.get(thread_id)
        if post is None or post.forum_id != channel_id:
            return UNKNOWN_CHANNEL
        return Landing(thread_id, thread_id)
    if not name:
        return NEEDS_THREAD
    applied = tuple(str(tag) for tag in payload.get("applied_tags") or ())
    unknown = [tag for tag in applied if tag not in tags]
    if unknown:
        errors = {"applied_tags": {"_errors": [{"code": "TAG_INVALID", "message": "Unknown tag"}]}}
        return Rejection(400, {"message": "Invalid Form Body", "code": 50035, "errors": errors})
    return Landing(channel_id, new_id, ForumPost(new_id, channel_id, str(name), applied))
