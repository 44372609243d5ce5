"""Snapshots of log records: formatted once, plain data, never raising."""

from __future__ import annotations

import json
import logging
import sys

import pytest

from discord_logging.capture.snapshot import (
    fingerprint,
    formatted_traceback,
    record_message,
    snapshot,
    to_notification,
)
from discord_logging.notification import DeliveryStatus, Notification, NotificationResult

FORMATTER = logging.Formatter()


def make_record(msg: object, args: object = None, **extra: object) -> logging.LogRecord:
    rec = logging.LogRecord("app", logging.ERROR, "/src/app.py", 3, msg, args, None, "handler")  # type: ignore[arg-type]
    rec.__dict__.update(extra)
    return rec


def test_args_that_do_not_format_still_give_a_message() -> None:
    """'%d' with a string arg does not raise; template and args are shown."""
    message = record_message(make_record("count %d", ("x",)))
    assert "count %d" in message
    assert "could not format" in message


def test_snapshot_keeps_plain_data_only() -> None:
    """The notification is JSON-serialisable and round-trips; extras are strings."""

    class Thing:
        def __repr__(self) -> str:
            return "<thing>"

    rec = make_record("user %s", ("bob",), user_id=7, thing=Thing(), alert_type="security")
    notification = to_notification(snapshot(rec, "security", FORMATTER))
    assert notification.message == "user bob"
    assert dict(notification.extra) == {"user_id": "7", "thing": "<thing>"}
    data = json.loads(json.dumps(notification.to_dict()))
    assert Notification.from_dict(data) == notification


def test_hostile_repr_in_extra_is_absorbed() -> None:
    """An extra whose repr raises becomes a placeholder, not an exception."""

    class Hostile:
        def __repr__(self) -> str:
            raise RuntimeError("no")

    notification = to_notification(
        snapshot(make_record("m", hostile=Hostile()), "error", FORMATTER)
    )
    assert dict(notification.extra)["hostile"] == "<unprintable Hostile>"


def test_exception_and_stack_are_formatted_once() -> None:
    """exc_info becomes exc_text and exc_type; stack_info is appended."""
    try:
        raise KeyError("k")
    except KeyError:
        rec = make_record("failed")
        rec.exc_info = sys.exc_info()
    rec.stack_info = "Stack (most recent call last):\n  here"
    notification = to_notification(snapshot(rec, "error", FORMATTER))
    assert notification.exc_type == "KeyError"
    assert notification.exc_text is not None
    assert "KeyError: 'k'" in notification.exc_text
    assert notification.exc_text.endswith("here")


def test_title_is_first_line_capped() -> None:
    """The title is the message's first line, at most 256 characters."""
    notification = to_notification(
        snapshot(make_record("x" * 300 + "\nsecond"), "error", FORMATTER)
    )
    assert len(notification.title) == 256
    assert notification.title.endswith("…")


def test_non_string_msg() -> None:
    """A non-string msg (an exception object, a dict) still snapshots."""
    notification = to_notification(snapshot(make_record({"a": 1}), "general", FORMATTER))
    assert notification.message == "{'a': 1}"


def test_fingerprint_ignores_args_but_not_template() -> None:
    """Same template and place with other args is the same problem; another template is not."""
    a = to_notification(snapshot(make_record("user %s failed", ("a",)), "error", FORMATTER))
    b = to_notification(snapshot(make_record("user %s failed", ("b",)), "error", FORMATTER))
    c = to_notification(snapshot(make_record("other %s", ("a",)), "error", FORMATTER))
    assert a.fingerprint == b.fingerprint != c.fingerprint
    assert fingerprint("e", "l", 40, "t", None, "w") == fingerprint("e", "l", 40, "t", None, "w")
    assert fingerprint("e", "l", 40, "t", "KeyError", "w") != fingerprint(
        "e", "l", 40, "t", None, "w"
    )


def test_result_to_dict() -> None:
    """Results serialise with their status as a string."""
    result = NotificationResult("id", DeliveryStatus.DELIVERED, webhook_id="1", message_id="2")
    assert result.ok
    assert result.to_dict()["status"] == "delivered"
    assert not NotificationResult("id", DeliveryStatus.FAILED).ok


def test_formatted_traceback() -> None:
    """The non-logging API formats exceptions like logging does."""
    with pytest.raises(ValueError, match="v") as info:
        raise ValueError("v")
    assert formatted_traceback(info.value).endswith("ValueError: v")


def test_storm_samples_are_redacted_and_round_trip() -> None:
    """A summary's samples lose webhook tokens and survive to_dict / JSON / from_dict."""
    token_url = "https://discord.com/api/webhooks/123/sEcReT-token"
    snap = snapshot(make_record("order %d failed", (7,)), "error", FORMATTER)
    samples = [(1000.0, "order 6 failed"), (1001.5, f"posting to {token_url} failed")]
    notification = to_notification(snap, samples=samples).with_count(2, 1000.0)
    assert notification.samples == (
        (1000.0, "order 6 failed"),
        (1001.5, "posting to https://discord.com/api/webhooks/123/*** failed"),
    )
    data = json.loads(json.dumps(notification.to_dict()))
    assert data["samples"] == [[1000.0, "order 6 failed"], [1001.5, notification.samples[1][1]]]
    assert Notification.from_dict(data) == notification


def test_notification_stored_before_samples_still_loads() -> None:
    """A dict written before storms kept samples (no "samples" key) loads with none."""
    old = to_notification(snapshot(make_record("m"), "error", FORMATTER)).to_dict()
    del old["samples"]
    loaded = Notification.from_dict(old)
    assert loaded.samples == ()
    assert loaded.samples_not_kept == 0


def test_fingerprint_extra_is_the_grouping_key_and_not_a_field() -> None:
    """extra={"fingerprint": ...} groups records of any message and place within the alert
    type; it is not shown as an extra; records without it group by template and place."""
    from discord_logging.capture.snapshot import snapshot_fingerprint

    a = snapshot(make_record("primary down", fingerprint="db"), "error", FORMATTER)
    b = snapshot(make_record("replica lag %d", (4,), fingerprint="db"), "error", FORMATTER)
    c = snapshot(make_record("primary down", fingerprint="db"), "critical", FORMATTER)
    d = snapshot(make_record("primary down"), "error", FORMATTER)
    assert snapshot_fingerprint(a) == snapshot_fingerprint(b)
    assert snapshot_fingerprint(a) != snapshot_fingerprint(c)
    assert snapshot_fingerprint(a) != snapshot_fingerprint(d)
    assert to_notification(a).extra == ()


class Hostile:
    def __str__(self) -> str:
        raise RuntimeError("no")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({"Trace": "https://t/1"}, (("Trace", "https://t/1"),)),
        (
            [{"label": "A", "url": "https://a"}, ("B", "https://b")],
            (("A", "https://a"), ("B", "https://b")),
        ),
        ([["only one"], 3, {"label": "C"}], (("C", "None"),)),
        ("https://not-a-list", ()),
        ({Hostile(): "https://h"}, (("<unprintable Hostile>", "https://h"),)),
    ],
)
def test_record_buttons_become_plain_pairs(value: object, expected: object) -> None:
    """extra={"buttons": ...} becomes (label, url) text pairs in the caller's thread, without
    raising, whatever it holds; it is not shown as an extra (checked when rendered)."""
    snap = snapshot(make_record("m", buttons=value), "error", FORMATTER)
    assert snap.buttons == expected
    assert to_notification(snap).extra == ()


def test_record_buttons_that_raise_are_left_out() -> None:
    """A buttons extra whose iteration raises gives no buttons, and the record still goes."""

    class Exploding(list[object]):
        def __iter__(self) -> object:  # type: ignore[override]
            raise RuntimeError("boom")

    snap = snapshot(make_record("m", buttons=Exploding()), "error", FORMATTER)
    assert snap.buttons == ()
    assert snap.message == "m"
