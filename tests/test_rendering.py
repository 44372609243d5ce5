"""Templates and fitting: defaults per alert type, user overrides, start-up validation, limits."""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

import pytest
from discord_schema import validate_webhook_payload
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from discord_logging.alerts import COLORS, AlertType
from discord_logging.capture.snapshot import snapshot, to_notification
from discord_logging.errors import TemplateError
from discord_logging.render.fitting import EMPTY_VALUE
from discord_logging.render.message_limits import MESSAGE_EMBED_TOTAL, embed_length, text_length
from discord_logging.render.packing import pack
from discord_logging.render.payload import build_payload
from discord_logging.render.templating import EmbedRenderer, sample_notification
from discord_logging.render.text import BLANK_TITLE, is_blank
from discord_logging.testing import Accepted, validate


def make(alert_type: str = "error", **changes: object) -> object:
    return replace(sample_notification(alert_type), **changes)  # type: ignore[arg-type]


@pytest.mark.parametrize("alert_type", [t.value for t in AlertType])
def test_default_template_per_type(alert_type: str) -> None:
    """Each built-in type renders with its color, footer, fields and timestamp, schema-valid."""
    rendered = EmbedRenderer(app_name="shop").render(sample_notification(alert_type))
    embed = rendered.embed
    assert embed["color"] == COLORS[alert_type]
    assert embed["footer"]["text"] == f"shop {alert_type.title()} Alert"
    names = [f["name"] for f in embed.get("fields", [])]
    assert "Logger" in names
    assert embed["timestamp"] == "1970-01-01T00:00:00+00:00"
    assert "```py\nTraceback" in embed["description"]
    assert rendered.full_text is None
    validate_webhook_payload(build_payload([embed]))


def test_default_fields_show_where_the_record_came_from() -> None:
    """Logger, level, host, process/thread and location fields are present."""
    embed = EmbedRenderer().render(sample_notification("general")).embed
    fields = {f["name"]: f["value"] for f in embed["fields"]}
    assert fields["Level"] == "ERROR"
    assert fields["Host"] == "host"
    assert fields["Process/Thread"] == "MainProcess (1) / MainThread"
    assert fields["Location"] == "app/sample.py:1 in sample"
    assert fields["key"] == "value"


def test_aggregated_count_is_in_the_title() -> None:
    """A storm summary says how many times in its title, and since when in its description
    as a Discord timestamp (titles render none: no <t:...> there)."""
    embed = EmbedRenderer().render(make(count=512, first_seen=3600 * 14 + 2 * 60 + 11)).embed
    assert embed["title"].endswith("(x 512)")
    assert "<t:" not in embed["title"]
    assert embed["description"].startswith(f"**512 records** since <t:{3600 * 14 + 131}:f>")


def test_custom_type_gets_base_template_and_neutral_color() -> None:
    """An unknown alert type renders with base.j2 and the default custom color."""
    embed = EmbedRenderer(app_name="a").render(make("billing")).embed
    assert embed["footer"]["text"] == "a Billing Alert"
    assert embed["color"] == 0x95A5A6


def test_user_template_overrides_one_type(tmp_path: Path) -> None:
    """A <type>.j2 in templates_dir overrides blocks for that type only."""
    (tmp_path / "error.j2").write_text(
        '{% extends "base.j2" %}\n'
        "{% block title %}DB down: {{ title }}{% endblock %}\n"
        "{% block fields %}Owner: team-db\n{% endblock %}\n"
        "{% block color %}#ff0000{% endblock %}\n"
    )
    renderer = EmbedRenderer(templates_dir=tmp_path)
    renderer.validate()
    embed = renderer.render(make("error")).embed
    assert embed["title"].startswith("DB down: Sample alert")
    assert embed["fields"] == [{"name": "Owner", "value": "team-db", "inline": True}]
    assert embed["color"] == 0xFF0000
    assert renderer.render(make("general")).embed["title"].startswith("Sample alert")


def test_broken_template_fails_at_startup_naming_file_and_line(tmp_path: Path) -> None:
    """A syntax error is reported with the template file and line."""
    (tmp_path / "critical.j2").write_text('{% extends "base.j2" %}\n\n{% block title %}{{ x }\n')
    with pytest.raises(TemplateError, match=r"critical\.j2, line \d"):
        EmbedRenderer(templates_dir=tmp_path).validate()


def test_undefined_variable_fails_at_startup(tmp_path: Path) -> None:
    """StrictUndefined: a misspelt variable fails validation naming the file and line."""
    (tmp_path / "security.j2").write_text(
        '{% extends "base.j2" %}\n{% block title %}\n{{ titel }}{% endblock %}\n'
    )
    with pytest.raises(TemplateError, match=r"security\.j2, line 3.*titel"):
        EmbedRenderer(templates_dir=tmp_path).validate()


def test_template_not_extending_base_is_refused(tmp_path: Path) -> None:
    """A template that is not built on base.j2 cannot be read back and is refused."""
    (tmp_path / "general.j2").write_text("just text")
    with pytest.raises(TemplateError, match="extends"):
        EmbedRenderer(templates_dir=tmp_path).validate()


def test_sandbox_refuses_escapes(tmp_path: Path) -> None:
    """The sandbox blocks access to Python internals from a template."""
    (tmp_path / "general.j2").write_text(
        '{% extends "base.j2" %}{% block title %}'
        "{{ title.__class__.__mro__[1].__subclasses__() }}{% endblock %}"
    )
    with pytest.raises(TemplateError, match=r"SecurityError|unsafe"):
        EmbedRenderer(templates_dir=tmp_path).validate()


def test_missing_templates_dir_is_a_clear_error(tmp_path: Path) -> None:
    """A templates_dir that does not exist is named in the error."""
    with pytest.raises(TemplateError, match="DISCORD_TEMPLATES_DIR"):
        EmbedRenderer(templates_dir=tmp_path / "nope")


def test_runtime_template_error_falls_back_and_counts(tmp_path: Path) -> None:
    """A template failing on a real record falls back to a plain embed and is counted."""
    (tmp_path / "error.j2").write_text(
        '{% extends "base.j2" %}{% block title %}{{ 1 // (count - 5) }}{% endblock %}'
    )
    renderer = EmbedRenderer(templates_dir=tmp_path)
    rendered = renderer.render(make("error", count=5))
    assert renderer.template_errors == 1
    assert rendered.embed["title"] == "Sample alert"
    validate_webhook_payload(build_payload([rendered.embed]))


def test_huge_message_and_traceback_fit_and_keep_the_tail() -> None:
    """A 100 KB message with a deep traceback fits, keeps the exception line, attaches full text."""
    trace = "Traceback (most recent call last):\n" + "  File 'x.py', line 1\n" * 5000
    trace += "ZeroDivisionError: the real cause"
    notification = make("critical", message="m" * 100_000, exc_text=trace)
    rendered = EmbedRenderer().render(notification)
    embed = rendered.embed
    assert embed_length(embed) <= MESSAGE_EMBED_TOTAL
    assert text_length(embed["description"]) <= 4096
    assert "ZeroDivisionError: the real cause\n```" in embed["description"]
    assert embed["description"].count("```") == 2
    assert rendered.full_text is not None
    assert rendered.full_text.endswith("ZeroDivisionError: the real cause")
    assert "m" * 100_000 in rendered.full_text
    validate_webhook_payload(build_payload([embed]))


def test_many_extras_are_capped() -> None:
    """Hundreds of extras stay within 25 fields and the 6000 total."""
    extras = tuple((f"k{i}", "v" * 900) for i in range(300))
    rendered = EmbedRenderer().render(make("general", extra=extras))
    assert len(rendered.embed["fields"]) <= 25
    assert embed_length(rendered.embed) <= MESSAGE_EMBED_TOTAL
    assert rendered.full_text is not None


def test_log_text_cannot_ping_or_break_fences() -> None:
    """@everyone in a message and ``` in a traceback are neutralised."""
    rendered = EmbedRenderer().render(
        make("error", title="@everyone look", message="@here <@&1> x", exc_text="a ``` b")
    )
    text = str(rendered.embed)
    assert "@everyone" not in text
    assert "@here" not in text
    assert rendered.embed["description"].count("```") == 2


def test_snapshot_of_a_real_record_renders() -> None:
    """A LogRecord with an exception goes through snapshot and renders."""
    try:
        1 / 0  # noqa: B018
    except ZeroDivisionError:
        import sys

        rec = logging.LogRecord(
            "app.db", logging.ERROR, "/x/app/db.py", 7, "boom %s", ("x",), sys.exc_info(), "f"
        )
    notification = to_notification(snapshot(rec, "error", logging.Formatter()))
    embed = EmbedRenderer().render(notification).embed
    assert embed["title"] == "boom x"
    assert "ZeroDivisionError" in embed["description"]
    validate_webhook_payload(build_payload([embed]))


def test_non_logging_notification_has_no_empty_fields() -> None:
    """A notification sent without logging shows only the fields it has (no 'None')."""
    from discord_logging.capture.direct import build_notification
    from discord_logging.capture.snapshot import HOST

    notification = build_notification("general", "Backup finished", "ok", fields={"size": "3 GB"})
    embed = EmbedRenderer().render(notification).embed
    assert {f["name"]: f["value"] for f in embed["fields"]} == {"Host": HOST, "size": "3 GB"}
    assert "None" not in str(embed)


# -- blank text: Discord trims, then needs one character; we never send a part that is blank --

BLANKS = [" ", "\t", "\n", "\r\n", "\u00a0", "\u3000", "\u200b", "\u200c", "\u200d", "\u2060"]
BLANKS += ["\ufeff", "\u180e", "\u3164", "\u2800", "\x1e"]
blank_text = st.lists(st.sampled_from(BLANKS), min_size=1, max_size=12).map("".join)


def _accepted(payload: dict[str, object]) -> None:
    """FakeDiscord's validation (Discord's rules, blank parts included) and the schema helper."""
    verdict = validate(payload, {})
    assert isinstance(verdict, Accepted), getattr(verdict, "body", verdict)
    validate_webhook_payload(payload)


@pytest.mark.slow  # a long model (hypothesis, many examples)
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    title=blank_text,
    message=blank_text,
    key=blank_text,
    value=blank_text,
    logger=blank_text,
    exc=st.one_of(st.none(), blank_text),
    count=st.integers(1, 14),
)
def test_blank_text_in_every_part_is_valid_plain_and_digest(
    title: str, message: str, key: str, value: str, logger: str, exc: str | None, count: int
) -> None:
    """Whitespace- or invisible-only text anywhere (title, description, field name and value,
    logger, traceback, digest fields) renders and packs to a payload Discord accepts."""
    renderer = EmbedRenderer(app_name="shop")
    notes = [
        make(
            "error",
            title=title,
            message=message,
            logger=logger,
            fields=((key, value), ("k", value)),
            extra=((key, value),),
            exc_text=exc,
        )
        for _ in range(count)
    ]
    rendered = [renderer.render(n) for n in notes]
    for item in rendered:
        _accepted(build_payload([item.embed]))
    message_out = pack(rendered, renderer.digest_field, attach=False, now=0.0)
    _accepted(build_payload(list(message_out.embeds)))


def test_blank_log_message_gets_a_clear_title_and_placeholders() -> None:
    """A blank record says so in its title; a blank field value shows "(empty)"."""
    embed = (
        EmbedRenderer()
        .render(
            make(
                "general", title=" \u200b", message="\n\ufeff", fields=(("k", "\u2060 "),), count=1
            )
        )
        .embed
    )
    assert embed["title"] == BLANK_TITLE
    assert {"name": "k", "value": EMPTY_VALUE, "inline": True} in embed["fields"]
    assert "description" not in embed or not is_blank(embed["description"])


# -- Discord timestamps and forum post titles ---------------------------------------------------


def test_discord_time_styles_and_values() -> None:
    """discord_time gives <t:SECONDS:STYLE> for epoch seconds or a datetime, "" for None, and
    refuses a style Discord does not know."""
    from datetime import UTC, datetime

    from discord_logging.render.timestamps import discord_time

    assert discord_time(1700000000.9) == "<t:1700000000:f>"
    assert discord_time(datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC), "R") == "<t:1700000000:R>"
    assert discord_time(None, "T") == ""
    with pytest.raises(ValueError, match="style 'x'"):
        discord_time(0.0, "x")


@pytest.mark.parametrize(
    ("markup", "shown"),
    [
        ("<t:1700000000:t>", "22:13"),
        ("<t:1700000000:T>", "22:13:20"),
        ("<t:1700000000:d>", "14/11/2023"),
        ("<t:1700000000:D>", "14 November 2023"),
        ("<t:1700000000:f>", "14 November 2023 22:13"),
        ("<t:1700000000>", "14 November 2023 22:13"),
        ("<t:1700000000:F>", "Tuesday, 14 November 2023 22:13"),
        ("<t:1700000000:R>", "now"),
        ("<t:1699999999:R>", "1 second ago"),
        ("<t:1699999880:R>", "2 minutes ago"),
        ("<t:1700007200:R>", "in 2 hours"),
        ("<t:1699913600:R>", "1 day ago"),
        ("from <t:1700000000:t> to <t:1700000060:t>", "from 22:13 to 22:14"),
        ("<t:1700000000:x> stays", "<t:1700000000:x> stays"),
    ],
)
def test_readable_times_show_discord_markup_as_a_reader_sees_it(
    markup: str, shown: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """readable_times (the demo's terminal output) shows each <t:...> as Discord's client
    would, in this machine's zone (UTC here), ``R`` relative to the ``now`` it is given."""
    import time

    from discord_logging.render.timestamps import readable_times

    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    try:
        assert readable_times(markup, now=1700000000.0) == shown
    finally:
        monkeypatch.undo()
        time.tzset()


def test_template_with_an_unknown_time_style_fails_at_start_up(tmp_path: Path) -> None:
    """A template calling discord_time with a style Discord does not know is a start-up error
    naming the file."""
    (tmp_path / "error.j2").write_text(
        '{% extends "base.j2" %}{% block description %}{{ discord_time(first_seen, "Q") }}'
        "{% endblock %}",
        encoding="utf-8",
    )
    with pytest.raises(TemplateError, match=r"error\.j2"):
        EmbedRenderer(templates_dir=tmp_path).validate(["error"])


def test_digest_field_shows_its_time_in_the_value_not_the_name() -> None:
    """Field names render no timestamps: a digest line's time is at the start of its value."""
    field = EmbedRenderer().digest_field(make(created=1700000000.0, count=3), 1024)
    assert "<t:" not in field["name"]
    assert field["name"].endswith("(x 3)")
    assert field["value"].startswith("<t:1700000000:T> ")


def test_post_title_is_one_line_of_at_most_100_and_never_blank(tmp_path: Path) -> None:
    """The post_title block becomes one line cut to 100 characters; a blank one falls back to
    the embed's title."""
    (tmp_path / "error.j2").write_text(
        '{% extends "base.j2" %}{% block post_title %}{{ extra.get("post", "") }}{% endblock %}',
        encoding="utf-8",
    )
    renderer = EmbedRenderer(templates_dir=tmp_path)
    long = renderer.render(make(extra=(("post", "line one\nline two " + "x" * 200),)))
    assert long.post_title.startswith("line one line two x")
    assert len(long.post_title) == 100
    blank = renderer.render(make(extra=(("post", "   "),), title="Disk full", count=1))
    assert blank.post_title == "Disk full"


def test_a_base_template_of_five_blocks_still_works(tmp_path: Path) -> None:
    """A user's own base.j2 written before the post_title block existed still renders; the
    post's title is then the embed's title."""
    (tmp_path / "base.j2").write_text(
        '{{ title }}{{ "\\x1e" }}{{ message }}{{ "\\x1e" }}{{ "\\x1e" }}footer{{ "\\x1e" }}',
        encoding="utf-8",
    )
    renderer = EmbedRenderer(templates_dir=tmp_path)
    renderer.validate(["error"])
    rendered = renderer.render(make(title="Queue full"))
    assert rendered.post_title == "Queue full"
    assert renderer.template_errors == 0


def test_the_built_in_templates_render_for_every_type() -> None:
    """The shipped templates compile and render a sample of every built-in type and of a
    custom one: the handler does not check them at each start (it checks the user's own)."""
    EmbedRenderer().validate(["billing"])
