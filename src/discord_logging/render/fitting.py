"""Fitting an embed to Discord's limits: whatever the templates produced, what comes out is
valid for Discord (every length, the 6000-character total, non-blank fields), and what had to
be cut goes along in full as a file."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from ..alerts import COLORS, DEFAULT_CUSTOM_COLOR
from ..notification import Notification
from . import message_limits as limits
from .storm_summary import STORM_ATTACHMENT, is_summary, listing, needs_listing
from .text import (
    MARKER,
    blank_safe_title,
    clean,
    code_block,
    cut_head,
    cut_tail,
    sanitize,
    single_line,
    visible,
)

# Room kept for fields so a long message cannot squeeze out where it came from.
FIELDS_BUDGET: Final = 1500
TRUNCATED_NOTE: Final = "\n" + MARKER + " cut to fit Discord; full text attached"
TRUNCATED_NOTE_NO_FILE: Final = "\n" + MARKER + " cut to fit Discord; full text in the history"
ATTACHMENT_NAME: Final = "traceback.txt"
EMPTY_VALUE: Final = "(empty)"  # a field whose value shows nothing (Discord refuses it blank)


@dataclass(frozen=True, slots=True)
class RenderedNotification:
    """A notification as one Discord embed, plus the full text when fitting had to cut it."""

    notification: Notification
    embed: dict[str, Any]
    full_text: str | None = None
    post_title: str = ""
    """The title of the forum post it opens (a forum or media channel), at most 100."""
    buttons: tuple[tuple[str, str], ...] = ()
    """Its link buttons, ``(label, url)``: at most 5, each checked."""

    @property
    def size(self) -> int:
        """What this embed adds to the 6000-character total of a message."""
        return limits.embed_length(self.embed)

    @property
    def attachment_name(self) -> str:
        """The file ``full_text`` goes in: a storm summary's lists its records."""
        return STORM_ATTACHMENT if is_summary(self.notification) else ATTACHMENT_NAME


def fit_embed(
    notification: Notification, sections: dict[str, str], note: str = TRUNCATED_NOTE
) -> RenderedNotification:
    """Build the embed from rendered sections, cut to every Discord limit (6000 total included)."""
    cut = False
    title = blank_safe_title(
        clean(sections["title"]), notification.message, notification.alert_type
    )
    fitted_title = cut_head(title, limits.EMBED_TITLE)
    cut |= fitted_title != title
    footer = cut_head(visible(clean(sections["footer"])), 256)

    # send()'s fields are fields of their own (not parsed): their names are made one line,
    # their values keep the lines the caller wrote.
    given = [(single_line(name), value) for name, value in notification.fields]
    fields, fields_cut = _fit_fields(_parse_fields(sections["fields"]) + given)
    cut |= fields_cut
    embed: dict[str, Any] = {"type": "rich", "title": fitted_title}
    used = limits.text_length(fitted_title) + limits.text_length(footer)
    used += sum(limits.text_length(f["name"]) + limits.text_length(f["value"]) for f in fields)

    room = min(limits.EMBED_DESCRIPTION, limits.MESSAGE_EMBED_TOTAL - used)
    description, description_cut = _fit_description(
        visible(clean(sections["description"])), notification.exc_text, room, note
    )
    cut |= description_cut
    if description:
        embed["description"] = description
    if fields:
        embed["fields"] = fields
    if footer:
        embed["footer"] = {"text": footer}
    embed["color"] = _color(sections["color"], notification)
    embed["timestamp"] = datetime.fromtimestamp(notification.created, UTC).isoformat()
    # A storm summary whose sample does not show each of its records sends them as a file.
    cut |= needs_listing(notification)
    post_title = sections.get("post_title") or sections["title"]
    return RenderedNotification(
        notification,
        embed,
        full_text(notification) if cut else None,
        post_title=fit_post_title(post_title, fitted_title),
    )


def fit_post_title(name: str, fallback: str) -> str:
    """A forum post's title: one line, cleaned, at most 100 characters, never blank."""
    line = " ".join(clean(name).split())
    if not visible(line):
        line = " ".join(fallback.split()) or "alert"
    return cut_head(line, limits.POST_TITLE)


def _fit_description(
    message: str, exc_text: str | None, room: int, note: str = TRUNCATED_NOTE
) -> tuple[str, bool]:
    """Message first, then the traceback in a code block; when cut, the traceback keeps its tail."""
    block = code_block(sanitize(exc_text), 10**9) if exc_text and visible(exc_text) else ""
    joined = "\n".join(part for part in (message, block) if part)
    if limits.text_length(joined) <= room:
        return joined, False
    budget = room - limits.text_length(note)
    if not block:
        return cut_head(message, budget) + note, True
    # The message gets what the traceback leaves, but at least a third of the room.
    needed = limits.text_length(block) + 1
    message_budget = min(limits.text_length(message), max(budget - needed, budget // 3))
    head = cut_head(message, message_budget)
    block = code_block(sanitize(exc_text or ""), budget - limits.text_length(head) - 1)
    return "\n".join(part for part in (head, block) if part) + note, True


def _parse_fields(block: str) -> list[tuple[str, str]]:
    fields: list[tuple[str, str]] = []
    for line in block.splitlines():
        name, sep, value = line.partition(": ")
        if sep and name.strip():
            fields.append((name.strip(), value.strip()))
        elif line.rstrip().endswith(":") and ": " not in line:
            continue  # "Name:" with nothing after it: an unset value, not a continuation
        elif line.strip() and fields:
            previous_name, previous_value = fields[-1]
            fields[-1] = (previous_name, f"{previous_value}\n{line.strip()}")
    return fields


def _fit_fields(pairs: list[tuple[str, str]]) -> tuple[list[dict[str, Any]], bool]:
    fields: list[dict[str, Any]] = []
    used = 0
    cut = False
    for name, value in pairs:
        if len(fields) == limits.FIELDS_PER_EMBED:
            return fields, True
        # Discord trims names and values, then rejects them empty: blank ones get a placeholder.
        shown_name, shown_value = visible(clean(name), "-"), visible(clean(value), EMPTY_VALUE)
        fitted_name = cut_head(shown_name, limits.FIELD_NAME)
        fitted_value = cut_head(shown_value, limits.FIELD_VALUE)
        size = limits.text_length(fitted_name) + limits.text_length(fitted_value)
        if used + size > FIELDS_BUDGET:
            return fields, True
        cut |= fitted_value != shown_value or fitted_name != shown_name
        used += size
        fields.append({"name": fitted_name, "value": fitted_value, "inline": size <= 60})
    return fields, cut


def _color(section: str, notification: Notification) -> int:
    text = section.strip().lower()
    try:
        if text:
            value = int(text[1:], 16) if text.startswith("#") else int(text, 0)
            if 0 <= value <= limits.COLOR_MAX:
                return value
    except ValueError:
        pass
    if notification.color is not None and 0 <= notification.color <= limits.COLOR_MAX:
        return notification.color
    return COLORS.get(notification.alert_type, DEFAULT_CUSTOM_COLOR)


def full_text(notification: Notification) -> str:
    """The whole alert as plain text, for the attachment sent when the embed had to be cut."""
    parts = [notification.title]
    if notification.message != notification.title:
        parts.append(notification.message)
    if is_summary(notification):  # before the traceback, whose tail a cut must keep
        parts.append(listing(notification))
    if notification.exc_text:
        parts.append(notification.exc_text)
    text = sanitize("\n\n".join(parts))
    # The file limit is in bytes; UTF-8 takes at most 4 per character.
    return cut_tail(text, limits.FILE_BYTES // 4)
