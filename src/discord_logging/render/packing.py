"""Packing a lane's backlog into one Discord message (pure).

An idle lane sends a lone notification at once. What waits while the lane is limited goes
together: up to 10 embeds and 6000 characters. When the backlog holds more than ten full
embeds can carry, the message becomes a digest: one record per embed field, each cut to fit,
so one message carries as many records as Discord's 6000-character total allows. The full
records stay in the history, and go along as a text file.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

from ..alerts import COLORS
from ..notification import Notification
from . import message_limits as limits
from .fitting import ATTACHMENT_NAME, RenderedNotification, full_text
from .text import cut_head, cut_tail

DIGEST_MIN_PER_RECORD: Final = 100  # below this a digest line is too short to be useful
DIGEST_MAX_RECORDS: Final = limits.EMBEDS_PER_MESSAGE * limits.FIELDS_PER_EMBED
DIGEST_COLOR: Final = COLORS["general"]
DIGEST_ATTACHMENT: Final = "records.txt"
ATTACHMENT_BYTES: Final = 8 * 1024 * 1024  # below Discord's 10 MiB per file, with room

DigestField = Callable[[Notification, int], dict[str, Any]]


@dataclass(frozen=True, slots=True)
class OutgoingMessage:
    """One Execute Webhook request: which notifications it carries, its embeds and file."""

    notifications: tuple[Notification, ...]
    embeds: tuple[dict[str, Any], ...]
    attachment: tuple[str, bytes] | None = None
    digest: bool = False
    alert_types: frozenset[str] = field(default_factory=frozenset)

    @property
    def size(self) -> int:
        """Characters counted against the 6000 total."""
        return sum(limits.embed_length(e) for e in self.embeds)

    def without_attachment(self) -> OutgoingMessage:
        """The same message without its file (after a 413)."""
        return OutgoingMessage(self.notifications, self.embeds, None, self.digest, self.alert_types)


def pack(
    backlog: Sequence[RenderedNotification],
    digest_field: DigestField,
    *,
    attach: bool = True,
    now: float = 0.0,
) -> OutgoingMessage:
    """The next message for ``backlog`` (oldest first); it carries at least one notification."""
    if not backlog:
        raise ValueError("pack() needs at least one notification")
    taken: list[RenderedNotification] = []
    total = 0
    for item in backlog:
        if (
            len(taken) == limits.EMBEDS_PER_MESSAGE
            or total + item.size > limits.MESSAGE_EMBED_TOTAL
        ):
            break
        taken.append(item)
        total += item.size
    if len(taken) == len(backlog):
        return _plain(taken, attach)
    return _digest(
        [r.notification for r in backlog[:DIGEST_MAX_RECORDS]], digest_field, attach, now
    )


def _plain(taken: Sequence[RenderedNotification], attach: bool) -> OutgoingMessage:
    texts = [r.full_text for r in taken if r.full_text]
    attachment = None
    if attach and texts:
        body = ("\n\n" + "=" * 72 + "\n\n").join(texts)
        # One file per message: named for what it holds when all agree (a storm's records).
        names = {r.attachment_name for r in taken if r.full_text}
        attachment = (names.pop() if len(names) == 1 else ATTACHMENT_NAME, _file_bytes(body))
    return OutgoingMessage(
        notifications=tuple(r.notification for r in taken),
        embeds=tuple(r.embed for r in taken),
        attachment=attachment,
        alert_types=frozenset(r.notification.alert_type for r in taken),
    )


def _digest(
    candidates: Sequence[Notification], digest_field: DigestField, attach: bool, now: float
) -> OutgoingMessage:
    # Work out how many records fit at a useful length, then share the room among them.
    header_room = 120
    room = limits.MESSAGE_EMBED_TOTAL - header_room
    count = max(1, min(len(candidates), room // DIGEST_MIN_PER_RECORD))
    carried = list(candidates[:count])
    fields = _share(carried, digest_field, room)
    stamp = datetime.fromtimestamp(now, UTC).strftime("%H:%M:%S UTC")
    embeds: list[dict[str, Any]] = []
    for start in range(0, len(fields), limits.FIELDS_PER_EMBED):
        embed: dict[str, Any] = {
            "type": "rich",
            "color": DIGEST_COLOR,
            "fields": fields[start : start + limits.FIELDS_PER_EMBED],
        }
        embeds.append(embed)
    embeds[0]["title"] = f"{len(carried)} alerts while rate limited (digest)"
    embeds[-1]["footer"] = {
        "text": f"Backlog digest, {stamp}; full records attached and in history"
    }
    attachment = None
    if attach:
        body = ("\n\n" + "=" * 72 + "\n\n").join(full_text(n) for n in carried)
        attachment = (DIGEST_ATTACHMENT, _file_bytes(body))
    return OutgoingMessage(
        notifications=tuple(carried),
        embeds=tuple(embeds),
        attachment=attachment,
        digest=True,
        alert_types=frozenset(n.alert_type for n in carried),
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


def _file_bytes(text: str) -> bytes:
    data = text.encode("utf-8")
    if len(data) <= ATTACHMENT_BYTES:
        return data
    return cut_tail(text, ATTACHMENT_BYTES // 4).encode("utf-8")
