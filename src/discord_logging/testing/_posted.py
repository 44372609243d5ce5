"""What a webhook's messages become after they are posted: read, edited, deleted, and the forum
posts they opened (a mixin of :class:`~discord_logging.testing._server.FakeDiscord`).

``GET``, ``PATCH`` and ``DELETE`` on ``/webhooks/{id}/{token}/messages/{message_id}`` have a
rate-limit bucket of their own, announced in the headers like any route; an unknown (or
deleted) message answers 404 code 10008. Edits do not count in the hidden per-channel limit
here: Discord does not say whether they do (the library budgets them as if they did).
"""

from __future__ import annotations

import copy
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Final

from discord_logging.testing import _responses as resp
from discord_logging.testing._faults import MESSAGES, Fault, take
from discord_logging.testing._http import Incoming, Outgoing
from discord_logging.testing._limits import FixedWindow
from discord_logging.testing._models import (
    EditRecord,
    ForumPost,
    ReceivedMessage,
    StoredMessage,
)
from discord_logging.testing._stored_messages import apply_edit, find
from discord_logging.testing._validation import Accepted, Rejection

MESSAGE_ROUTE: Final = re.compile(
    r"^/api(?:/v\d+)?/webhooks/(?P<id>[^/]+)/(?P<token>[^/]+)/messages/(?P<message>[^/]+)$"
)


@dataclass
class Webhook:
    """A registered webhook and the channel it posts into."""

    id: str
    token: str
    channel_id: str
    name: str
    guild_id: str | None = None
    forum: bool = False
    tags: frozenset[str] = field(default_factory=frozenset)


class PostedMessages:
    """Messages as readers see them now, their edits, and forum posts."""

    _lock: threading.Lock
    _webhooks: dict[str, Webhook]
    _stored: dict[str, StoredMessage]
    _threads: dict[str, ForumPost]
    _edits: list[EditRecord]
    _message_buckets: dict[tuple[str, str], FixedWindow]
    _fail: list[Fault]
    _forced_429: list[Fault]
    _forced_global_429: list[Fault]
    _global: FixedWindow
    _ban: float | None
    _clock: Callable[[], float]
    webhook_limit: int
    webhook_window: float
    _snowflake: Callable[[], str]
    _record: Callable[[resp.Context, Outgoing], Outgoing]

    # -- for tests ---------------------------------------------------------------------------

    def message(self, message_id: str | int) -> StoredMessage | None:
        """A copy of a message as readers see it now (after its edits); None once deleted."""
        with self._lock:
            stored = self._stored.get(str(message_id))
            return copy.deepcopy(stored) if stored is not None else None

    @property
    def edits(self) -> list[EditRecord]:
        """The edits accepted, in order."""
        with self._lock:
            return list(self._edits)

    @property
    def threads(self) -> list[ForumPost]:
        """The forum posts opened, in order."""
        with self._lock:
            return [replace(post) for post in self._threads.values()]

    def delete_message(self, message_id: str | int) -> None:
        """Delete a message as a moderator would: editing it then answers 404 code 10008."""
        with self._lock:
            self._stored.pop(str(message_id), None)

    def delete_thread(self, thread_id: str | int) -> None:
        """Delete a forum post: posting into it then answers 404 code 10003, and its
        messages are gone."""
        with self._lock:
            self._threads.pop(str(thread_id), None)
            for key in [k for k, m in self._stored.items() if m.thread_id == str(thread_id)]:
                del self._stored[key]

    # -- request handling (under the lock) ---------------------------------------------------

    def _store(self, message: ReceivedMessage) -> StoredMessage:
        """Keep a posted message for reading and editing."""
        attachments = [
            {"id": self._snowflake(), "filename": filename, "size": len(data), "data": data}
            for filename, data in message.files.values()
        ]
        stored = StoredMessage(
            message.message_id,
            message.webhook_id,
            message.channel_id or "",
            message.thread_id,
            dict(message.payload),
            attachments,
            created_at=message.received_at,
        )
        self._stored[stored.message_id] = stored
        return stored

    def _decide_message(
        self,
        request: Incoming,
        path: str,
        match: re.Match[str],
        query: dict[str, list[str]],
        parsed: Accepted | Rejection | None,
    ) -> Outgoing:
        """The answer to ``GET``/``PATCH``/``DELETE`` of one message, in Discord's order of
        checks: faults, the global limit, the routes' own bucket, the webhook, the message."""
        now = self._clock()
        wid, token = match["id"], match["token"]
        ctx = resp.Context(request.method, path, wid, now)
        if self._ban is not None:
            return self._record(ctx, resp.cloudflare_ban(self._ban))
        ctx.bucket = self._message_buckets.setdefault(
            (wid, token), FixedWindow(self.webhook_limit, self.webhook_window)
        )
        if request.method not in ("GET", "PATCH", "DELETE"):
            return self._record(ctx, resp.method_not_allowed(ctx))
        if fault := take(self._forced_global_429, wid, MESSAGES):
            return self._record(ctx, resp.rate_limited(ctx, fault.retry_after, is_global=True))
        if fault := take(self._fail, wid, MESSAGES):
            return self._record(ctx, resp.error(ctx, fault.status))
        if fault := take(self._forced_429, wid, MESSAGES):
            return self._record(ctx, resp.rate_limited(ctx, fault.retry_after, forced=True))
        if (wait := self._global.try_acquire(now)) > 0:
            return self._record(ctx, resp.rate_limited(ctx, wait, is_global=True))
        if (wait := ctx.bucket.try_acquire(now)) > 0:
            return self._record(ctx, resp.rate_limited(ctx, wait))
        hook = self._webhooks.get(wid)
        if hook is None:
            return self._record(ctx, resp.error(ctx, 404))
        if hook.token != token:
            return self._record(ctx, resp.error(ctx, 401))
        found = find(self._stored, wid, match["message"], query.get("thread_id", [None])[-1])
        if isinstance(found, Rejection):
            return self._record(ctx, resp.json_response(ctx, found.status, found.body))
        if request.method == "DELETE":
            del self._stored[found.message_id]
            return self._record(ctx, resp.json_response(ctx, 204, None))
        if request.method == "PATCH":
            refused = self._edit(found, parsed, now)
            if refused is not None:
                return self._record(ctx, resp.json_response(ctx, refused.status, refused.body))
        return self._record(ctx, resp.json_response(ctx, 200, resp.message_object(found, hook)))

    def _edit(
        self, stored: StoredMessage, parsed: Accepted | Rejection | None, now: float
    ) -> Rejection | None:
        assert parsed is not None  # a PATCH body is always parsed
        if isinstance(parsed, Rejection):
            return parsed
        new_ids = [self._snowflake() for _ in parsed.files]
        refused = apply_edit(stored, parsed.payload, parsed.files, new_ids, now)
        if refused is None:
            record = EditRecord(stored.webhook_id, stored.message_id, parsed.payload, now)
            self._edits.append(record)
        return refused
