"""Notifications to Discord embeds: Jinja2 templates in a sandbox, whose sections
:mod:`.fitting` then fits to Discord's limits.

Templates only produce text; :mod:`.text` and :mod:`.fitting` guarantee that what comes out is
valid for Discord whatever the input. A template that fails at run time falls back to a plain
built-in embed and is counted, so a bad template can never stop an alert.
"""

from __future__ import annotations

import os
import traceback
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
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

from ..alerts import AlertType
from ..config.alert_options import LinkButton
from ..errors import TemplateError
from ..notification import Notification
from ..redaction import redact
from ..wording import write_line
from . import message_limits as limits
from .buttons import ButtonTemplates, first_buttons, record_buttons
from .fitting import (
    EMPTY_VALUE,
    TRUNCATED_NOTE,
    TRUNCATED_NOTE_NO_FILE,
    RenderedNotification,
    fit_embed,
)
from .storm_summary import (
    SAMPLE_LINE_UNITS,
    STORM_ATTACHMENT,
    distinct_messages,
    flatten,
    is_summary,
    needs_listing,
    pick,
)
from .text import (
    clean,
    cut_head,
    field_name,
    single_line,
    visible,
)
from .timestamps import discord_time

SEPARATOR: Final = "\x1e"
SECTIONS: Final = ("title", "description", "fields", "footer", "color", "post_title")
# A base.j2 of the user's own, written before the post_title block existed, has these.
SECTIONS_BEFORE_FORUMS: Final = 5
BASE_TEMPLATE: Final = "base.j2"
PROBLEM_LIMIT: Final = 300  # characters of a failing template's exception said on stderr


class EmbedRenderer:
    """Renders notifications with per-alert-type templates; ``render`` never raises."""

    def __init__(
        self,
        *,
        app_name: str = "discord-logging",
        templates_dir: str | os.PathLike[str] | None = None,
        attach_full_text: bool = True,
        buttons: Mapping[str, Sequence[LinkButton]] | None = None,
        on_buttons_dropped: Callable[[int], None] | None = None,
    ) -> None:
        self.app_name = app_name
        self.attach_full_text = attach_full_text
        self.note = TRUNCATED_NOTE if attach_full_text else TRUNCATED_NOTE_NO_FILE
        self.templates_dir = Path(templates_dir) if templates_dir is not None else None
        loaders: list[Any] = [PackageLoader("discord_logging", "templates")]
        if self.templates_dir is not None:
            if not self.templates_dir.is_dir():
                raise TemplateError(
                    f"DISCORD_TEMPLATES_DIR {str(self.templates_dir)!r} is not a directory. Fix: "
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
        self._env.globals["discord_time"] = discord_time
        self._templates: dict[str, Template] = {}
        self.template_errors = 0
        self._reported: set[str] = set()  # templates whose failure was said on stderr
        self.buttons_dropped = 0  # buttons left out: a failed template, a link Discord refuses
        self._on_buttons_dropped = on_buttons_dropped
        self.button_templates = ButtonTemplates(self._env, buttons or {})

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
        names += [t for t in self.button_templates.alert_types if t not in names]
        for name in names:
            sample = sample_notification(name)
            self.button_templates.validate(name, self._context(sample))
            try:
                self._sections(self._template(name), sample)
            except TemplateSyntaxError as exc:
                raise TemplateError(
                    f"template {exc.filename or exc.name}, line {exc.lineno}: {exc.message}. "
                    "Fix: correct the template's syntax"
                ) from None
            except Exception as exc:  # noqa: BLE001 - any template failure is a config error
                where = _template_location(exc) or f"template for {name!r}"
                raise TemplateError(
                    f"{where}: {type(exc).__name__}: {exc}. Fix: use only the variables "
                    "listed in docs/templates.md, and extend base.j2"
                ) from None

    def _context(self, notification: Notification) -> dict[str, Any]:
        return context(notification, self.app_name, self.attach_full_text)

    def _sections(self, template: Template, notification: Notification) -> dict[str, str]:
        text = template.render(self._context(notification))
        parts = text.split(SEPARATOR)
        if len(parts) not in (SECTIONS_BEFORE_FORUMS, len(SECTIONS)):
            raise ValueError(
                f"produced {len(parts)} sections instead of {len(SECTIONS)}: "
                "a template must {% extends 'base.j2' %} and override blocks only"
            )
        # The fields block keeps its last line's trailing space: "Name: " with an empty value
        # is a field like any other line's ("(empty)"), not dropped for being last.
        return {
            name: part.strip("\n") if name == "fields" else part.strip()
            for name, part in zip(SECTIONS, parts, strict=False)
        }

    # -- rendering ---------------------------------------------------------------------------

    def render(self, notification: Notification) -> RenderedNotification:
        """One embed for ``notification``, valid for Discord whatever the input."""
        try:
            sections = self._sections(self._template(notification.alert_type), notification)
        except Exception as exc:  # noqa: BLE001 - fall back, count, never raise on delivery
            self.template_errors += 1
            self._report_failure(exc, notification.alert_type)
            sections = self._fallback_sections(notification)
        rendered = fit_embed(notification, sections, self.note)
        if not notification.buttons and not self.button_templates.wanted(notification.alert_type):
            return rendered
        return replace(rendered, buttons=self._buttons(notification))

    def _buttons(self, notification: Notification) -> tuple[tuple[str, str], ...]:
        """The alert type's buttons first, then the record's own: at most 5, each checked."""
        typed: list[tuple[str, str]] = []
        dropped = 0
        if self.button_templates.wanted(notification.alert_type):
            typed, dropped = self.button_templates.render(
                notification.alert_type, self._context(notification)
            )
        own, refused = record_buttons(notification.buttons)
        buttons, over = first_buttons(typed, own)
        left_out = dropped + refused + over
        if left_out:
            self.buttons_dropped += left_out
            if self._on_buttons_dropped is not None:
                self._on_buttons_dropped(left_out)
        return buttons

    def _report_failure(self, exc: Exception, alert_type: str) -> None:
        """One stderr line per failing template (its file and line), not one per record: the
        counter says how often, the line says which template to fix."""
        where = _template_location(exc) or f"the template of alert type {alert_type!r}"
        if where in self._reported:
            return
        self._reported.add(where)
        problem = redact(f"{type(exc).__name__}: {exc}")[:PROBLEM_LIMIT]
        write_line(
            f"discord-logging: {where} failed on a {alert_type!r} record ({problem}); such "
            "alerts go out with the plain built-in embed (fields kept) until it is fixed; "
            "counted in stats()['template_errors']. Said once per template.",
        )

    def _fallback_sections(self, notification: Notification) -> dict[str, str]:
        n = notification
        shown = record_texts(n)
        label = n.alert_type.replace("_", " ").title()
        # The record's extra= values stay: they are often what the alert is about.
        fields = [f"Logger: {shown['logger']}", f"Level: {shown['level']}"]
        fields += [f"{name}: {value}" for name, value in shown["extra"].items()]
        return {
            "title": shown["title"],
            "description": n.message if n.message != n.title else "",
            "fields": "\n".join(fields),
            "footer": f"{self.app_name} {label} Alert",
            "color": "",
            "post_title": shown["title"],
        }

    def digest_field(self, notification: Notification, value_limit: int) -> dict[str, Any]:
        """One notification as a single embed field, for backlog digests. Its time is a
        Discord timestamp at the start of the value (field names do not render them)."""
        shown = record_texts(notification)
        name = f"{shown['level']} {shown['logger']}".strip()
        if notification.count > 1:
            name += f" (x {notification.count})"
        body = notification.title
        if notification.message != notification.title:
            body = notification.message
        body = f"{discord_time(notification.created, 'T')} {body}"
        if notification.exc_type:
            body += f"\n{shown['exc_type']}"
        return {
            "name": cut_head(visible(clean(name), "-"), limits.FIELD_NAME),
            "value": cut_head(visible(clean(body), EMPTY_VALUE), value_limit) or "-",
            "inline": False,
        }


def _plain(text: str | None) -> str | None:
    """Log text with our block separator removed, so it cannot forge a section."""
    return text.replace(SEPARATOR, "") if text and SEPARATOR in text else text


def _line(text: str | None) -> str | None:
    return single_line(text) if text else text


def record_texts(n: Notification) -> dict[str, Any]:
    """What a record brings that may become an embed's title, a field's name or a field's
    value, each made single-line (:func:`.text.single_line`; extra names :func:`.field_name`):
    the one place where no record can create, rename or reorder a field (docs/architecture.md,
    "Untrusted input", rule 2). The template context, the fallback embed and digests use it."""
    location = ""
    if n.pathname:
        short = "/".join(Path(n.pathname).parts[-2:])
        location = f"{short}:{n.lineno} in {n.func_name}" if n.func_name else f"{short}:{n.lineno}"
    return {
        "title": single_line(n.title),
        "level": single_line(n.level),
        "logger": single_line(n.logger or "root"),
        "host": single_line(n.host),
        "process_name": _line(n.process_name),
        "thread_name": _line(n.thread_name),
        "pathname": _line(n.pathname),
        "func_name": _line(n.func_name),
        "location": single_line(location),
        # One line per extra: a newline in a value must not start a forged "Name: value" field.
        "extra": {field_name(k): single_line(v) for k, v in n.extra},
        "fields": {field_name(k): single_line(v) for k, v in n.fields},
        "exc_type": _line(n.exc_type),
        "trace_id": _line(n.trace_id) or None,
        "span_id": _line(n.span_id) or None,
        "trace_url": _line(n.trace_url) or None,
    }


def context(notification: Notification, app_name: str, attach: bool = True) -> dict[str, Any]:
    """The variables a template sees (documented in docs/templates.md); ``attach``: whether
    files go along (the setting ``attach_full_text``)."""
    n = notification
    first_seen = n.first_seen if n.first_seen is not None else n.created
    last_seen = n.last_seen if n.last_seen is not None else n.created
    return {
        "alert_type": n.alert_type,
        "alert_label": n.alert_type.replace("_", " ").title(),
        "message": _plain(n.message),
        "levelno": n.levelno,
        "process": n.process,
        "thread": n.thread,
        "lineno": n.lineno,
        "from_logging": bool(n.logger or n.pathname),
        "exc_text": _plain(n.exc_text),
        "count": n.count,
        "first_seen_time": datetime.fromtimestamp(first_seen, UTC).strftime("%H:%M:%S UTC"),
        "first_seen": first_seen,
        "last_seen": last_seen,
        "ongoing": n.ongoing,
        "quiet": n.quiet,
        "created": datetime.fromtimestamp(n.created, UTC),
        "app_name": app_name,
        **record_texts(n),
        **_storm_context(n, attach),
    }


def _storm_context(n: Notification, attach: bool) -> dict[str, Any]:
    """A storm summary's sample of distinct messages, and where the rest is."""
    samples = n.samples if is_summary(n) else ()
    distinct = distinct_messages(samples)
    shown = [
        {
            "time": datetime.fromtimestamp(d.first, UTC).strftime("%H:%M:%S"),
            "at": discord_time(d.first, "T"),
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
        trace_id="0af7651916cd43dd8448eb211c80319c",
        span_id="b7ad6b7169203331",
        trace_url="https://tracing.example/trace/0af7651916cd43dd8448eb211c80319c",
    )


def _template_location(exc: BaseException) -> str | None:
    """'template <file>, line N' from the traceback Jinja rewrites to point into templates."""
    for frame in reversed(traceback.extract_tb(exc.__traceback__)):
        if frame.filename.endswith(".j2"):
            return f"template {frame.filename}, line {frame.lineno}"
    return None
