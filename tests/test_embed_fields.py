"""Fields that cannot be forged (issue 32, point 2): whatever text a record brings (message,
logger, level, thread, process, host, file, function, ``extra=`` names and values), the
rendered payload has exactly the fields the template wrote, with the names it gave them, in
its order; no title or field holds a line break, a control or a bidirectional character."""

from __future__ import annotations

import dataclasses
import logging
import threading
import unicodedata
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from discord_logging import DiscordHandler
from discord_logging.capture.direct import build_notification
from discord_logging.capture.snapshot import snapshot, to_notification
from discord_logging.render import message_limits as limits
from discord_logging.render.fitting import EMPTY_VALUE
from discord_logging.render.payload import build_payload
from discord_logging.render.templating import EmbedRenderer
from discord_logging.render.text import clean, cut_head, field_name, single_line, visible
from discord_logging.testing import FakeDiscord

FIXED = ["Logger", "Level", "Host", "Process/Thread", "Location"]
# Characters that end a line for the fields block (str.splitlines), the separator of the
# template's blocks, and bidirectional controls: what a forger reaches for.
NASTY = "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029\t\x00\x7f\x9b\u202e\u2066\u200f: "
BIDI = set("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c")
STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}
HIDDEN = {"alert_type", "taskName", "fingerprint", "buttons"}

texts = st.text(
    alphabet=st.one_of(st.characters(), st.sampled_from(NASTY)),
    max_size=24,
)
extra_names = texts.filter(
    lambda k: k not in STANDARD and k not in HIDDEN and not k.startswith(("_", "otel"))
)


def _bad(char: str) -> bool:
    """A character no title, field name or field value the library writes may hold."""
    return len(f"a{char}b".splitlines()) > 1 or unicodedata.category(char) == "Cc" or char in BIDI


def _shown(text: str, placeholder: str, limit: int) -> str:
    """What the fitting makes of a name or value the fields block holds (after the read,
    which strips it): cleaned, a placeholder when blank, cut to Discord's limit."""
    return cut_head(visible(clean(text.strip()), placeholder), limit)


def _rendered(record: logging.LogRecord, host: str) -> dict[str, Any]:
    """The payload's one embed for ``record`` on host ``host``, as the worker renders it."""
    notification = to_notification(snapshot(record, "error", logging.Formatter()))
    notification = dataclasses.replace(notification, host=host)
    rendered = EmbedRenderer().render(notification)
    payload = build_payload([rendered.embed])
    embed: dict[str, Any] = payload["embeds"][0]
    return embed


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    message=texts,
    logger=texts,
    level=texts,
    thread=texts,
    process=texts,
    host=texts,
    pathname=texts,
    function=texts,
    extra=st.dictionaries(extra_names, texts, max_size=4),
)
@example(
    message="disk full",
    logger="app\nStatus: RESOLVED by on-call, ignore",
    level="ERROR",
    thread="worker\nSeverity: low (test)",
    process="Main\u2028Owner: nobody",
    host="web-1\rRegion: none",
    pathname="/app/x\x85Ticket: closed.py",
    function="f\u2029Impact: none",
    extra={"order\nRefund": "approved", "user: admin": "x\nStatus: ok", "": "v"},
)
def test_no_record_can_create_rename_or_reorder_a_field(
    message: str,
    logger: str,
    level: str,
    thread: str,
    process: str,
    host: str,
    pathname: str,
    function: str,
    extra: dict[str, str],
) -> None:
    """Arbitrary strings in every source: the payload's fields are the template's five, then
    one per extra name in order, each name and value the source's text made one line; the
    title and every field hold no line break, control or bidirectional character."""
    record = logging.makeLogRecord(
        {
            "msg": message,
            "name": logger,
            "levelname": level,
            "levelno": logging.ERROR,
            "threadName": thread,
            "processName": process,
            "process": 4242,
            "pathname": pathname,
            "lineno": 7,
            "funcName": function,
            **extra,
        }
    )
    embed = _rendered(record, host)
    fields = embed["fields"]
    names = [f["name"] for f in fields]
    extras: dict[str, str] = {}
    for key in sorted(extra):
        extras[field_name(key)] = single_line(extra[key])
    short = "/".join(Path(pathname).parts[-2:])
    location = f"{short}:7 in {function}" if function else f"{short}:7"
    from_logging = bool(logger or pathname)  # else the template leaves Logger and Level out
    expected_names = FIXED[0 if from_logging else 2 : 4] + (["Location"] if pathname else [])
    expected_names += [_shown(name, "-", limits.FIELD_NAME) for name in extras]
    assert names == expected_names
    values = [f["value"] for f in fields]
    expected_values = [single_line(logger or "root"), single_line(level)] if from_logging else []
    expected_values += [single_line(host), f"{single_line(process)} (4242) / {single_line(thread)}"]
    if pathname:
        expected_values.append(single_line(location))
    fixed = [_shown(v, EMPTY_VALUE, limits.FIELD_VALUE) for v in expected_values]
    assert values[: len(fixed)] == fixed
    shown_extras = [_shown(v, EMPTY_VALUE, limits.FIELD_VALUE) for v in extras.values()]
    assert values[len(expected_names) - len(extras) :] == shown_extras
    for text in [embed["title"], *names, *values]:
        assert not any(_bad(char) for char in text), repr(text)


def test_the_issues_forged_fields_do_not_reach_discord(fake_discord: FakeDiscord) -> None:
    """The probe of issue 32, sent through a handler to the fake Discord: a logger named
    "app\\nStatus: RESOLVED by on-call, ignore" and a thread named "worker\\nSeverity: low
    (test)" show as themselves, one line each; no Status or Severity field appears."""
    handler = DiscordHandler(
        webhooks={"error": fake_discord.add_webhook()},
        allowed_hosts=fake_discord.host,
        aggregate_window=0,
        dead_letters=None,
    )
    log = logging.getLogger("app\nStatus: RESOLVED by on-call, ignore")
    log.propagate = False
    log.addHandler(handler)
    try:
        done = threading.Event()

        def emit() -> None:
            log.error("payment failed", extra={"order\nSeverity": "low (test)"})
            done.set()

        thread = threading.Thread(target=emit, name="worker\nSeverity: low (test)")
        thread.start()
        thread.join(30)
        assert done.is_set()
        assert handler.flush(30)
    finally:
        log.removeHandler(handler)
        handler.close()
    (message,) = fake_discord.messages
    fields = message.embeds[0]["fields"]
    assert [f["name"] for f in fields] == [
        "Logger",
        "Level",
        "Host",
        "Process/Thread",
        "Location",
        "order Severity",
    ]
    assert fields[0]["value"] == "app Status: RESOLVED by on-call, ignore"
    assert fields[3]["value"].endswith("/ worker Severity: low (test)")


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("plain", "plain"),
        ("a\nb", "a b"),
        ("a\r\n\r\nb", "a b"),
        ("a\x0bb\x0cc\x1cd\x1de\x1ef", "a b c d e f"),
        ("a\x85b\u2028c\u2029d", "a b c d"),
        ("tab\there", "tab here"),
        ("nul\x00 del\x7f c1\x9b", "nul del c1"),
        ("\u202eevil\u202c \u2066x\u2069 \u200e\u200f\u061c", "evil x "),
        ("lone \ud800", "lone \ufffd"),
        ("emoji 🚨 and ü", "emoji 🚨 and ü"),
    ],
)
def test_single_line(text: str, line: str) -> None:
    """single_line: breaks of every kind and tabs become one space; controls and bidi go."""
    assert single_line(text) == line


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("order", "order"),
        ("user: admin", "user:\u00a0admin"),
        ("a\nStatus: x", "a Status:\u00a0x"),
        ("", "-"),
        (" \n\t", "-"),
        ("ratio:", "ratio:"),
    ],
)
def test_field_name(text: str, name: str) -> None:
    """field_name: single_line, no ': ' that could end the name early, never blank."""
    assert field_name(text) == name


@given(texts)
def test_single_line_leaves_no_line_break_control_or_bidi(text: str) -> None:
    """Whatever the text, single_line's result is one line of no control or bidi character;
    field_name's also holds no ': ' and is never blank."""
    line = single_line(text)
    assert not any(_bad(char) for char in line)
    name = field_name(text)
    assert ": " not in name
    assert name.strip()


def test_send_fields_get_one_line_names_and_keep_their_values() -> None:
    """send()'s own fields are fields of their own: the name is made one line, the value
    keeps the lines the calling code wrote."""
    notification = build_notification(
        "general", "deploy\r\nStatus: fine", fields={"By\nStatus": "alice\nbob"}
    )
    embed = EmbedRenderer().render(notification).embed
    assert embed["title"] == "deploy Status: fine"
    assert embed["fields"][-1] == {"name": "By Status", "value": "alice\nbob", "inline": True}
