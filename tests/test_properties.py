"""Property tests: whatever a log call contains, routing and rendering give a valid payload."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from discord_schema import validate_webhook_payload
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from discord_logging.alerts import AlertType
from discord_logging.capture.routing import Router
from discord_logging.capture.snapshot import snapshot, to_notification
from discord_logging.render.message_limits import MESSAGE_EMBED_TOTAL, embed_length
from discord_logging.render.payload import build_payload
from discord_logging.render.templating import EmbedRenderer

STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}

# Every code point, lone surrogates, RTL marks and zero-width characters included.
any_char = st.characters(codec=None, categories=None)
tricky = st.sampled_from(
    [
        "\u202e",
        "\u200b",
        "\ufeff",
        "\ud800",
        "\udfff",
        "😀",
        "👩‍👩‍👧",
        "@everyone",
        "@here",
        "<@&1>",
        "```",
        "\n",
        "%",
        "%s",
        "%(x)s",
    ]
)
texts = st.lists(st.one_of(st.text(any_char, max_size=40), tricky), max_size=30).map("".join)
huge = st.builds(lambda piece, times: piece * times, texts.filter(bool), st.integers(1, 30_000))
messages = st.one_of(texts, huge)
args = st.one_of(
    st.none(),
    st.tuples(),
    st.lists(st.one_of(st.integers(), st.floats(allow_nan=True), texts, st.none()), max_size=4).map(
        tuple
    ),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
)
extras = st.dictionaries(
    st.text(st.characters(codec="ascii", categories=["L"]), min_size=1, max_size=12).filter(
        lambda k: k not in STANDARD
    ),
    st.one_of(texts, st.integers(), st.lists(st.integers(), max_size=3), st.binary(max_size=20)),
    max_size=40,
)


def traceback_text(depth: int, line: str, tail: str) -> str:
    frames = "".join(f'  File "/app/m{i}.py", line {i}, in f\n    {line}\n' for i in range(depth))
    return f"Traceback (most recent call last):\n{frames}ValueError: {tail}"


tracebacks = st.one_of(st.none(), st.builds(traceback_text, st.integers(0, 3000), texts, messages))
ROUTER = Router({"app.sec": "security", "app.tl": "tracklist"}, [t.value for t in AlertType])
RENDERER = EmbedRenderer(app_name="prop")


@pytest.mark.slow  # a long model (hypothesis, many examples)
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    name=st.sampled_from(["app", "app.sec.x", "app.tl", "root", ""]),
    level=st.sampled_from([5, 10, 20, 30, 40, 50, 60]),
    msg=messages,
    msg_args=args,
    extra=extras,
    exc_text=tracebacks,
    alert_type=st.one_of(st.none(), st.sampled_from(["security", "billing", "bad name!", 3])),
)
def test_any_record_renders_to_a_valid_payload(
    name: str,
    level: int,
    msg: str,
    msg_args: Any,
    extra: dict[str, Any],
    exc_text: str | None,
    alert_type: Any,
) -> None:
    """Any text, failing %-args, huge strings, deep tracebacks, odd extras: always valid."""
    record = logging.LogRecord(name, level, "/app/x.py", 1, msg, None, None)
    record.args = msg_args
    record.__dict__.update(extra)
    record.exc_text = exc_text
    if alert_type is not None:
        record.alert_type = alert_type
    kind = ROUTER.alert_type(record)
    rendered = RENDERER.render(to_notification(snapshot(record, kind, logging.Formatter())))
    assert embed_length(rendered.embed) <= MESSAGE_EMBED_TOTAL
    validate_webhook_payload(build_payload([rendered.embed]))
    if exc_text and "\n```" in rendered.embed.get("description", ""):
        assert rendered.embed["description"].count("```") == 2
    assert RENDERER.template_errors == 0
