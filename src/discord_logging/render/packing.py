"""Packing a lane's backlog into one Discord message (pure).

An idle lane sends a lone notification at once. What waits goes together: up to 10 embeds
and 6000 characters, each record its own embed with its own traceback. Only when the backlog
needs more such messages than the channel takes now (``room``, from the shared limits) does
the message become a digest: one record per embed field, each cut to fit, so one message
carries as many records as Discord's 6000-character total allows. The full records stay in
the history, and go along as a text file. A digest's title says why it was needed
(:class:`DigestReason`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Final

from ..alerts import COLORS
from ..notification import Notification
from . import message_limits as limits
from .buttons import action_rows
from .fitting import ATTACHMENT_NAME, RenderedNotification, fit_post_title, full_text
from .text import cut_head, cut_tail

DIGEST_MIN_PER_RECORD: Final = 100  # below this a digest line is too short to be useful
DIGEST_MAX_RECORDS: Final = limits.EMBEDS_PER_MESSAGE * limits.FIELDS_PER_EMBED
DIGEST_COLOR: Final = COLORS["general"]
DIGEST_ATTACHMENT: Final = "records.txt"
ATTACHMENT_BYTES: Final = 8 * 1024 * 1024  # below Discord's 10 MiB per file, with room

DigestField = Callable[[Notification, int], dict[str, Any]]


class DigestReason(StrEnum):
    """Why a backlog went as a digest, for its title: never "rate limited" unless one was met."""

    RATE_LIMITED = "rate_limited"  # a backlog after a rate limit (a 429, a pause, a ban)
    OUTAGE = "outage"  # records kept through failures, sent when Discord answered again
    BURST = "burst"  # more at once than the limits let go one embed per record


@dataclass(frozen=True, slots=True)
class Room:
    """What the channel takes now, for packing a backlog: ``messages`` plain messages (the
    one about to go included) of at most ``embeds`` records each (1 in a forum channel: each
    record opens its own post); else a digest, titled for ``reason``."""

    messages: int = 1
    embeds: int = limits.EMBEDS_PER_MESSAGE
    reason: DigestReason = DigestReason.BURST


DIGEST_TITLES: Final = {
    DigestReason.RATE_LIMITED: "{n} alerts held back by a rate limit (digest)",
    DigestReason.OUTAGE: "{n} alerts kept through an outage (digest)",
    DigestReason.BURST: "{n} alerts at once, more than Discord's limits allow (digest)",
}


@dataclass(frozen=True, slots=True)
class OutgoingMessage:
    """One Execute Webhook request: which notifications it carries, its embeds and file, its
    link buttons (action rows), and the title of the post it opens in a forum channel."""

    notifications: tuple[Notification, ...]
    embeds: tuple[dict[str, Any], ...]
    attachment: tuple[str, bytes] | None = None
    digest: bool = False
    alert_types: frozenset[str] = field(default_factory=frozenset)  # whose mentions it pings
    components: tuple[dict[str, Any], ...] = ()
    post_title: str = ""

    @property
    def size(self) -> int:
        """Characters counted against the 6000 total."""
        return sum(limits.embed_length(e) for e in self.embeds)

    def without_attachment(self) -> OutgoingMessage:
        """The same message without its file (after a 413)."""
        return OutgoingMessage(
            self.notifications,
            self.embeds,
            None,
            self.digest,
            self.alert_types,
            self.components,
            self.post_title,
        )


def pack(
    backlog: Sequence[RenderedNotification],
    digest_field: DigestField,
    *,
    attach: bool = True,
    now: float = 0.0,
    room: Room = Room(),
) -> OutgoingMessage:
    """The next message for ``backlog`` (oldest first); it carries at least one notification.

    Plain (one embed per record) while the whole backlog fits in the plain messages the
    channel takes now (``room``); else a digest, titled for why."""
    if not backlog:
        raise ValueError("pack() needs at least one notification")
    messages = plain_messages(backlog, room.embeds)
    if len(messages[0]) == len(backlog) or len(messages) <= room.messages:
        return _plain(messages[0], attach)
    return _digest(
        [r.notification for r in backlog[:DIGEST_MAX_RECORDS]],
        digest_field,
        attach,
        now,
        room.reason,
    )


def plain_messages(
    backlog: Sequence[RenderedNotification], embeds: int = limits.EMBEDS_PER_MESSAGE
) -> list[list[RenderedNotification]]:
    """``backlog`` in plain messages, in order: up to ``embeds`` embeds (at most 10) and 6000
    characters each."""
    messages: list[list[RenderedNotification]] = [[]]
    total = 0
    for item in backlog:
        taken = messages[-1]
        if taken and (
            len(taken) == min(embeds, limits.EMBEDS_PER_MESSAGE)
            or total + item.size > limits.MESSAGE_EMBED_TOTAL
        ):
            messages.append([])
            total = 0
        messages[-1].append(item)
        total += item.size
    return messages


def _plain(taken: Sequence[RenderedNotification], attach: bool) -> OutgoingMessage:
    texts = [r.full_text for r in taken if r.full_text]
    attachment = None
    if attach and texts:
        body = ("\n\n" + "=" * 72 + "\n\n").join(texts)
        # One file per message: named for what it holds when all agree (a storm's records).
        names = {r.attachment_name for r in taken if r.full_text}
        attachment = (names.pop() if len(names) == 1 else ATTACHMENT_NAME, file_bytes(body))
    title = taken[0].post_title
    if len(taken) > 1:
        title = f"{title} (+{len(taken) - 1} more)"
    return OutgoingMessage(
        notifications=tuple(r.notification for r in taken),
        embeds=tuple(r.embed for r in taken),
        attachment=attachment,
        alert_types=frozenset(
            r.notification.alert_type for r in taken if not r.notification.silent
        ),
        components=tuple(action_rows([r.buttons for r in taken])),
        post_title=fit_post_title(title, taken[0].notification.title),
    )


def _digest(
    candidates: Sequence[Notification],
    digest_field: DigestField,
    attach: bool,
    now: float,
    reason: DigestReason,
) -> OutgoingMessage:
    # Work out how many records fit at a useful length, then share the room among them.
    header_room = 120
    room = limits.MESSAGE_EMBED_TOTAL - header_room
    count = max(1, min(len(candidates), room // DIGEST_MIN_PER_RECORD))
    carried = list(candidates[:count])
    fields = _share(carried, digest_field, room)
    embeds: list[dict[str, Any]] = []
    for start in range(0, len(fields), limits.FIELDS_PER_EMBED):
        embed: dict[str, Any] = {
            "type": "rich",
            "color": DIGEST_COLOR,
            "fields": fields[start : start + limits.FIELDS_PER_EMBED],
        }
        embeds.append(embed)
    title = DIGEST_TITLES[reason].format(n=len(carried))
    embeds[0]["title"] = title
    embeds[-1]["footer"] = {"text": "Backlog digest; full records attached and in history"}
    # Shown beside the footer in each reader's own time zone (a footer renders no <t:...>).
    embeds[-1]["timestamp"] = datetime.fromtimestamp(now, UTC).isoformat()
    attachment = None
    if attach:
        body = ("\n\n" + "=" * 72 + "\n\n").join(full_text(n) for n in carried)
        attachment = (DIGEST_ATTACHMENT, file_bytes(body))
    return OutgoingMessage(
        notifications=tuple(carried),
        embeds=tuple(embeds),
        attachment=attachment,
        digest=True,
        alert_types=frozenset(n.alert_type for n in carried if not n.silent),
        post_title=fit_post_title(title, title),
    )


def _share(
    carried: Sequence[Notification], digest_field: DigestField, room: int
) -> list[dict[str, Any]]:
    """Fields for ``carried`` within ``room`` units: short records keep their whole text and
    leave what they do not need to the longer ones (water-filling)."""
    natural = [digest_field(n, limits.FIELD_VALUE) for n in carried]
    sizes = [_field_size(f) for f in natural]
    budgets = [0] * len(carried)
    remaining = room
    order = sorted(range(len(carried)), key=lambda i: sizes[i])
    for position, index in enumerate(order):
        share = remaining // (len(order) - position)
        budgets[index] = min(sizes[index], share)
        remaining -= budgets[index]
    fields = []
    for index, notification in enumerate(carried):
        if sizes[index] <= budgets[index]:
            fields.append(natural[index])
            continue
        name = cut_head(natural[index]["name"], max(10, budgets[index] // 3))
        value_room = max(1, budgets[index] - limits.text_length(name))
        value = digest_field(notification, value_room)["value"]
        fields.append({"name": name, "value": cut_head(value, value_room) or "-", "inline": False})
    return fields


def _field_size(embed_field: dict[str, Any]) -> int:
    return limits.text_length(embed_field["name"]) + limits.text_length(embed_field["value"])


def file_bytes(text: str) -> bytes:
    """``text`` as a file's bytes, within the attachment limit (its tail kept)."""
    data = text.encode("utf-8")
    if len(data) <= ATTACHMENT_BYTES:
        return data
    return cut_tail(text, ATTACHMENT_BYTES // 4).encode("utf-8")
