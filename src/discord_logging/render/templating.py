"""Notifications to Discord embeds: Jinja2 templates in a sandbox, then fitted to Discord's limits.

Templates only produce text; :mod:`.text` and the fitting here guarantee that what comes out is
valid for Discord whatever the input. A template that fails at run time falls back to a plain
built-in embed and is counted, so a bad template can never stop an alert.
"""

from __future__ import annotations

import os
import traceback
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from jinja2 import (
    ChoiceLoader,
    FileSystemLoader,
    PackageLoader,
    StrictUndefined,
    Template,
    TemplateNotFound,
    TemplateSyntaxError,
)
from jinja2.sandbox import SandboxedEnvironment

from ..alerts import COLORS, DEFAULT_CUSTOM_COLOR, AlertType
from ..errors import TemplateError
from ..notification import Notification
from . import message_limits as limits
from .storm_summary import (
    SAMPLE_LINE_UNITS,
    STORM_ATTACHMENT,
    distinct_messages,
    flatten,
    is_summary,
    listing,
    needs_listing,
    pick,
)
from .text import (
    MARKER,
    blank_safe_title,
    clean,
    code_block,
    cut_head,
    cut_tail,
    sanitize,
    visible,
)

SEPARATOR: Final = "\x1e"
SECTIONS: Final = ("title", "description", "fields", "footer", "color")
BASE_TEMPLATE: Final = "base.j2"
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

    @property
    def size(self) -> int:
        """What this embed adds to the 6000-character total of a message."""
        return limits.embed_length(self.embed)

    @property
    def attachment_name(self) -> str:
        """The file ``full_text`` goes in: a storm summary's lists its records."""
        return STORM_ATTACHMENT if is_summary(self.notification) else ATTACHMENT_NAME


class EmbedRenderer:
    """Renders notifications with per-alert-type templates; ``render`` never raises."""

    def __init__(
        self,
        *,
        app_name: str = "discord-logging",
        templates_dir: str | os.PathLike[str] | None = None,
        attach_full_text: bool = True,
    ) -> None:
        self.app_name = app_name
        self.attach_full_text = attach_full_text
        self.note = TRUNCATED_NOTE if attach_full_text else TRUNCATED_NOTE_NO_FILE
        self.templates_dir = Path(templates_dir) if templates_dir is not None else None
        loaders: list[Any] = [PackageLoader("discord_logging", "templates")]
        if self.templates_dir is not None:
            if not self.templates_dir.is_dir():
                raise TemplateError(
                    f"DISCORD_TEMPLATES_DIR {str(self.templates_dir)!r} is not a directory; "
                    "create it or point the setting at the folder holding your <type>.j2 files"
                )
            loaders.insert(0, FileSystemLoader(self.templates_dir))
        # Sandboxed: a template from a config directory must not reach Python internals.
        # StrictUndefined: a misspelt variable fails at start-up, not as a blank at 3 a.m.
        self._env = SandboxedEnvironment(
            loader=ChoiceLoader(loaders),
            undefined=StrictUndefined,
            autoescape=False,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=False,
        )
        self._templates: dict[str, Template] = {}
        self.template_errors = 0

    # -- templates ---------------------------------------------------------------------------

    def _template(self, alert_type: str) -> Template:
        template = self._templates.get(alert_type)
        if template is None:
            try:
                template = self._env.get_template(f"{alert_type}.j2")
            except TemplateNotFound:
                template = self._env.get_template(BASE_TEMPLATE)
            self._templates[alert_type] = template
        return template

    def validate(self, alert_types: Iterable[str] = ()) -> None:
        """Render each template against a sample; raise TemplateError naming file and line."""
        builtin = [t.value for t in AlertType]
        names = builtin + [t for t in alert_types if t not in builtin]
        for name in names:
            sample = sample_notification(name)
            try:
                self._sections(self._template(name), sample)
            except TemplateSyntaxError as exc:
                raise TemplateError(
                    f"template {exc.filename or exc.name}, line {exc.lineno}: {exc.message}; "
                    "fix the template syntax"
                ) from None
            except Exception as exc:  # noqa: BLE001 - any template failure is a config error
                where = _template_location(exc) or f"template for {name!r}"
                raise TemplateError(
                    f"{where}: {type(exc).__name__}: {exc}; templates may use only the "
                    "variables listed in docs/templates.md and must extend base.j2"
                ) from None

    def _sections(self, template: Template, notification: Notification) -> dict[str, str]:
        text = template.render(context(notification, self.app_name, self.attach_full_text))
        parts = text.split(SEPARATOR)
        if len(parts) != len(SECTIONS):
            raise ValueError(
                f"produced {len(parts)} sections instead of {len(SECTIONS)}: "
                "a template must {% extends 'base.j2' %} and override blocks only"
            )
        return {name: part.strip() for name, part in zip(SECTIONS, parts, strict=True)}

    # -- rendering ---------------------------------------------------------------------------

    def render(self, notification: Notification) -> RenderedNotification:
        """One embed for ``notification``, valid for Discord whatever the input."""
        try:
            sections = self._sections(self._template(notification.alert_type), notification)
        except Exception:  # noqa: BLE001 - fall back, count, never raise on the delivery path
            self.template_errors += 1
            sections = self._fallback_sections(notification)
        return fit_embed(notification, sections, self.note)

    def _fallback_sections(self, notification: Notification) -> dict[str, str]:
        label = notification.alert_type.replace("_", " ").title()
        return {
            "title": notification.title,
            "description": notification.message
            if notification.message != notification.title
            else "",
            "fields": f"Logger: {notification.logger}\nLevel: {notification.level}",
            "footer": f"{self.app_name} {label} Alert",
            "color": "",
        }

    def digest_field(self, notification: Notification, value_limit: int) -> dict[str, Any]:
        """One notification as a single embed field, for backlog digests."""
        stamp = datetime.fromtimestamp(notification.created, UTC).strftime("%H:%M:%S")
        name = f"{notification.level} {stamp} {notification.logger}".strip()
        if notification.count > 1:
            name += f" (x {notification.count})"
        body = notification.title
        if notification.message != notification.title:
            body = notification.message
        if notification.exc_type:
            body += f"\n{notification.exc_type}"
        return {
            "name": cut_head(visible(clean(name), "-"), limits.FIELD_NAME),
            "value": cut_head(visible(clean(body), EMPTY_VALUE), value_limit) or "-",
            "inline": False,
        }


def _plain(text: str | None) -> str | None:
    """Log text with our block separator removed, so it cannot forge a section."""
    return text.replace(SEPARATOR, "") if text and SEPARATOR in text else text


def _one_line(text: str) -> str:
    plain = text.replace(SEPARATOR, "")
    return " ".join(plain.splitlines()) if "\n" in plain or "\r" in plain else plain


def context(notification: Notification, app_name: str, attach: bool = True) -> dict[str, Any]:
    """The variables a template sees (documented in docs/templates.md); ``attach``: whether
    files go along (the setting ``attach_full_text``)."""
    n = notification
    location = ""
    if n.pathname:
        short = "/".join(Path(n.pathname).parts[-2:])
        location = f"{short}:{n.lineno} in {n.func_name}" if n.func_name else f"{short}:{n.lineno}"
    first_seen = n.first_seen if n.first_seen is not None else n.created
    return {
        "alert_type": n.alert_type,
        "alert_label": n.alert_type.replace("_", " ").title(),
        "title": _plain(n.title),
        "message": _plain(n.message),
        "level": n.level,
        "levelno": n.levelno,
        "logger": _plain(n.logger or "root"),
        "host": n.host,
        "process": n.process,
        "process_name": n.process_name,
        "thread": n.thread,
        "thread_name": n.thread_name,
        "pathname": n.pathname,
        "lineno": n.lineno,
        "func_name": n.func_name,
        "location": location,
        "from_logging": bool(n.logger or n.pathname),
        # One line per extra: a newline in a value must not start a forged "Name: value" field.
        "extra": {_plain(k): _one_line(v) for k, v in n.extra},
        "fields": {_plain(k): _plain(v) for k, v in n.fields},
        "exc_type": n.exc_type,
        "exc_text": _plain(n.exc_text),
        "count": n.count,
        "first_seen_time": datetime.fromtimestamp(first_seen, UTC).strftime("%H:%M:%S UTC"),
        "created": datetime.fromtimestamp(n.created, UTC),
        "app_name": app_name,
        **_storm_context(n, attach),
    }


def _storm_context(n: Notification, attach: bool) -> dict[str, Any]:
    """A storm summary's sample of distinct messages, and where the rest is."""
    samples = n.samples if is_summary(n) else ()
    distinct = distinct_messages(samples)
    shown = [
        {
            "time": datetime.fromtimestamp(d.first, UTC).strftime("%H:%M:%S"),
            "message": cut_head(flatten(_plain(d.text) or ""), SAMPLE_LINE_UNITS),
            "count": d.count,
        }
        for d in pick(distinct)
    ]
    listed = attach and needs_listing(n)
    return {
        "samples": shown,
        "samples_distinct": len(distinct),
        "samples_kept": len(samples),
        "samples_not_kept": n.samples_not_kept if samples else 0,
        "samples_file": STORM_ATTACHMENT if listed else "",
    }


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

    fields, fields_cut = _fit_fields(_parse_fields(sections["fields"]) + list(notification.fields))
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
    return RenderedNotification(notification, embed, full_text(notification) if cut else None)


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


def sample_notification(alert_type: str) -> Notification:
    """A realistic record every template must render at start-up."""
    return Notification(
        alert_type=alert_type,
        title="Sample alert",
        message="Sample alert\nwith a second line",
        level="ERROR",
        levelno=40,
        logger="discord_logging.sample",
        created=0.0,
        host="host",
        process=1,
        process_name="MainProcess",
        thread=1,
        thread_name="MainThread",
        pathname="/app/sample.py",
        lineno=1,
        func_name="sample",
        extra=(("key", "value"),),
        exc_text="Traceback (most recent call last):\nValueError: sample",
        exc_type="ValueError",
        count=2,
        first_seen=0.0,
        samples=((0.0, "Sample alert"), (0.0, "Sample alert\nwith a second line")),
    )


def _template_location(exc: BaseException) -> str | None:
    """'template <file>, line N' from the traceback Jinja rewrites to point into templates."""
    for frame in reversed(traceback.extract_tb(exc.__traceback__)):
        if frame.filename.endswith(".j2"):
            return f"template {frame.filename}, line {frame.lineno}"
    return None
