"""Incidents and the Discord messages that show them (the worker thread; no I/O).

An incident is a storm's fingerprint. Each lane remembers, for the incidents it posted, the
latest message that shows each one (its id, the thread it is in, its embeds as last sent and
its files), so that the incident's updates edit that message instead of posting anew; and
how many of its posts are still queued or in flight, so that an update waits for them. A
message of several records keeps each incident's embed index: an edit changes that embed
and sends the others as they were. A digest's field is not edited: a later update posts anew.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

from ..config.alert_options import EDIT
from ..notification import Notification
from ..render.packing import OutgoingMessage
from ..transport.outcome import Outcome

if TYPE_CHECKING:
    from ..settings import DiscordSettings

MAX_INCIDENTS: Final = 10_000  # incidents a lane remembers; the oldest are forgotten first


@dataclass(frozen=True, slots=True)
class IncidentConfig:
    """What the lanes of a notifier need from the settings for incidents and forum posts."""

    edits: bool = True
    """Keep an incident's message current by edits (``DISCORD_INCIDENT_UPDATES=edit``)."""
    forum: frozenset[str] = frozenset()
    """Alert types whose webhook posts into a forum or media channel (``DISCORD_FORUM``)."""
    forum_tags: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    """Tag ids applied to the posts of each alert type (``DISCORD_FORUM_TAGS``)."""
    window: float = 60.0
    """Seconds without a repeat after which a storm is quiet (``DISCORD_AGGREGATE_WINDOW``)."""
    edit_interval: float = 10.0
    """Seconds between an incident's running updates (``DISCORD_INCIDENT_EDIT_INTERVAL``)."""

    @classmethod
    def of(cls, s: DiscordSettings) -> IncidentConfig:
        """The incident settings of ``s``."""
        return cls(
            edits=s.incident_updates == EDIT,
            forum=frozenset(s.forum),
            forum_tags=dict(s.forum_tags),
            window=s.aggregate_window,
            edit_interval=s.incident_edit_interval,
        )


@dataclass(slots=True)
class PostedMessage:
    """One of a lane's messages, as last sent: what an edit of one of its embeds resends."""

    message_id: str
    thread_id: str | None
    embeds: list[dict[str, object]]
    attachment_ids: list[str]


@dataclass(slots=True)
class Incident:
    """What a lane knows of one incident's messages."""

    message: PostedMessage | None = None  # the latest message showing it, when editable
    index: int = 0  # its embed in ``message``
    thread_id: str | None = None  # the forum post it opened, where its later messages go
    posting: set[str] = field(default_factory=set)  # ids of its records not settled yet
    kept: int = 0  # the count its newest update kept as a letter shows (0: none since)


class IncidentBoard:
    """Fingerprint -> :class:`Incident`, for one lane; bounded (least recently used first)."""

    def __init__(self, limit: int = MAX_INCIDENTS) -> None:
        self.limit = limit
        self._incidents: OrderedDict[str, Incident] = OrderedDict()
        self.watched: set[str] = set()  # incidents whose posts' answers someone waits for
        self.answered: list[str] = []  # of those, the ones whose posts all have their answer

    def get(self, key: str) -> Incident | None:
        """The incident of fingerprint ``key``, if this lane knows it."""
        return self._incidents.get(key)

    def _incident(self, key: str) -> Incident:
        found = self._incidents.get(key)
        if found is None:
            found = self._incidents[key] = Incident()
            while len(self._incidents) > self.limit:
                self._incidents.popitem(last=False)
        else:
            self._incidents.move_to_end(key)
        return found

    def expect(self, notification: Notification) -> None:
        """A record of an incident was queued: its updates wait for its outcome."""
        if notification.fingerprint:
            incident = self._incident(notification.fingerprint)
            incident.posting.add(notification.id)
            if not notification.is_update:  # a storm's first record: its count starts again
                incident.kept = 0

    def kept(self, notification: Notification) -> None:
        """``notification`` was kept as a letter: when an update, its count is what that
        letter will show (docs/architecture.md, "A kept update is its storm's word")."""
        if notification.fingerprint and notification.is_update:
            incident = self._incident(notification.fingerprint)
            incident.kept = max(incident.kept, notification.count)

    def shown_by_a_letter(self, key: str, notification: Notification, *, fleet: bool) -> bool:
        """Whether ``notification``, an update standing for no record, shows no more than a
        kept letter of its incident does, and there is no message it may edit: none in one
        process; in a fleet, none but the ones its post claims made (not a redelivery's)."""
        found = self._incidents.get(key)
        if found is None or notification.count > found.kept:
            return False
        return fleet or found.message is None

    def settled(self, notification: Notification) -> bool:
        """A record's outcome is known (delivered or kept); True if it was awaited."""
        found = self._incidents.get(notification.fingerprint) if notification.fingerprint else None
        if found is None or notification.id not in found.posting:
            return False
        found.posting.discard(notification.id)
        key = notification.fingerprint
        if not found.posting and key in self.watched:
            self.watched.discard(key)
            self.answered.append(key)
        return True

    def posted(self, message: OutgoingMessage, outcome: Outcome, thread_id: str | None) -> None:
        """``message`` was delivered: it is now the message of the incidents it shows (each
        at its embed), except in a digest, whose fields are not edited."""
        shared = PostedMessage(
            outcome.message_id or "", thread_id, list(message.embeds), list(outcome.attachment_ids)
        )
        for index, notification in enumerate(message.notifications):
            if not notification.fingerprint:
                continue
            incident = self._incident(notification.fingerprint)
            if thread_id:
                incident.thread_id = thread_id
            if not message.digest and outcome.message_id:
                incident.message, incident.index = shared, index

    def thread_of(self, key: str) -> str | None:
        """The forum post (thread) incident ``key`` opened, if any."""
        found = self._incidents.get(key)
        return found.thread_id if found is not None else None

    def gone(self, key: str, *, thread: bool = False) -> None:
        """Discord no longer has the incident's message (404 code 10008), or its thread
        (10003, ``thread``): the next update is posted anew."""
        found = self._incidents.get(key)
        if found is not None:
            found.message, found.kept = None, 0
            if thread:
                found.thread_id = None
