"""Mutes and quiet hours as pure rules, and the worker's gate on a frozen clock against the real
shared table (docs/architecture.md, "Mutes, quiet hours and resolving an incident")."""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path
from typing import Any

import pytest
from freezegun import freeze_time

from discord_logging.capture.snapshot import RecordSnapshot
from discord_logging.errors import ConfigurationError
from discord_logging.muting import Mute, Tally, parse_duration, parse_scope
from discord_logging.muting.gate import SUMMARY_GRACE, MuteGate, summary_notification
from discord_logging.muting.quiet import parse_quiet_hours
from discord_logging.muting.table import SqliteMuteTable
from discord_logging.notification import Notification
from discord_logging.settings import load_settings
from discord_logging.stats import DeliveryStats

WEBHOOK = "https://discord.com/api/webhooks/111111111111111111/general-TOKEN_aaaaaaaaaaaaaaaaaaaa"
BERLIN = dt.timezone(dt.timedelta(hours=1))  # Europe/Berlin in December (CET)


def at(text: str) -> float:
    """A wall-clock time given in Berlin's winter time."""
    return dt.datetime.fromisoformat(text).replace(tzinfo=BERLIN).timestamp()


@pytest.mark.parametrize(
    ("alert_type", "levelno", "text", "held"),
    [
        ("general", logging.WARNING, "disk almost full", True),
        ("error", logging.ERROR, "disk almost full", False),  # another type
        ("general", logging.CRITICAL, "disk almost full", False),  # CRITICAL passes
        ("general", logging.WARNING, "payment declined", False),  # --match not met
    ],
)
def test_a_mute_holds_its_type_below_critical_and_matching(
    alert_type: str, levelno: int, text: str, held: bool
) -> None:
    """A mute holds records of its scope, below CRITICAL, whose message has its match."""
    mute = Mute("m1", "general,monitoring", 100.0, 200.0, match="DISK")
    assert mute.holds(alert_type, levelno, text, 150.0) is held


def test_a_mute_holds_only_inside_its_window_and_all_levels_holds_critical() -> None:
    """Before its start and from its end a mute holds nothing; all_levels holds CRITICAL."""
    mute = Mute("m1", "all", 100.0, 200.0, all_levels=True)
    assert mute.holds("critical", logging.CRITICAL, "x", 100.0)
    assert not mute.holds("general", logging.INFO, "x", 99.9)
    assert not mute.holds("general", logging.INFO, "x", 200.0)


def test_durations_and_scopes_are_read_or_refused_saying_why() -> None:
    """2h is 7200 s; a bad duration or type is a ValueError saying what is allowed."""
    assert parse_duration("2h") == 7200
    assert parse_duration("90") == 90
    assert parse_scope("Errors, monitoring") == "error,monitoring"
    assert parse_scope("general,ALL") == "all"
    with pytest.raises(ValueError, match=r"e\.g\. 2h"):
        parse_duration("2 hours")
    with pytest.raises(ValueError, match="not a valid name"):
        parse_scope("bad type!")


@pytest.mark.parametrize(
    ("now", "window"),
    [
        ("2026-12-06 23:30", ("2026-12-06 22:00", "2026-12-07 07:00")),
        ("2026-12-07 06:59", ("2026-12-06 22:00", "2026-12-07 07:00")),
        ("2026-12-07 07:00", None),
        ("2026-12-07 12:00", None),
        ("2026-12-07 22:00", ("2026-12-07 22:00", "2026-12-08 07:00")),
    ],
)
def test_quiet_hours_window_at_now(now: str, window: tuple[str, str] | None) -> None:
    """22:00-07:00 Europe/Berlin holds from 22:00 to 07:00 the next morning, Berlin time."""
    (rule,) = parse_quiet_hours("general,monitoring=22:00-07:00 Europe/Berlin")
    expected = None if window is None else (at(window[0]), at(window[1]))
    assert rule.window_at(at(now)) == expected


def test_quiet_hours_make_the_same_mute_in_every_process() -> None:
    """The window's mute has an id derived from the rule and the window's start."""
    (one,) = parse_quiet_hours("general=22:00-07:00 Europe/Berlin")
    (two,) = parse_quiet_hours("general=22:00-07:00 Europe/Berlin")
    first, second = one.mute_at(at("2026-12-06 23:00")), two.mute_at(at("2026-12-07 05:00"))
    assert first is not None
    assert first == second
    later = one.mute_at(at("2026-12-07 23:00"))
    assert later is not None
    assert later.id != first.id


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("general=22:00-07:00 Mars/Olympus", "is not a time zone"),
        ("general=24:00-07:00", "hours are 00-23"),
        ("general 22:00-07:00", "is not types=HH:MM-HH:MM"),
        ("general=07:00-07:00 UTC", "starts and ends at the same time"),
        ("genral,monitoring=22:00-07:00 UTC", "'genral' is not an alert type here (did you mean"),
    ],
)
def test_bad_quiet_hours_are_a_configuration_error_naming_the_setting(
    monkeypatch: pytest.MonkeyPatch, value: str, problem: str
) -> None:
    """A bad DISCORD_QUIET_HOURS fails when the settings load, naming it, the problem, the fix."""
    monkeypatch.setenv("DISCORD_WEBHOOK_GENERAL", WEBHOOK)
    monkeypatch.setenv("DISCORD_QUIET_HOURS", value)
    with pytest.raises(ConfigurationError) as caught:
        load_settings()
    text = str(caught.value)
    assert problem in text
    assert "Fix: " in text
    assert text.count("DISCORD_QUIET_HOURS") == 1


def test_quiet_hours_take_custom_types_and_configured_near_misses(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A name far from every alert type is a custom type; one close to a built-in type is
    taken when this configuration gives it a webhook (a typo is refused only when nothing
    configures it)."""
    monkeypatch.setenv("DISCORD_WEBHOOK_GENERAL", WEBHOOK)
    monkeypatch.setenv("DISCORD_WEBHOOK_MONITOR", WEBHOOK)
    monkeypatch.setenv("DISCORD_QUIET_HOURS", "payments,monitor=22:00-07:00 UTC")
    (rule,) = load_settings().quiet_hours
    assert rule.scope == "payments,monitor"


class Recorder:
    """What a gate asks of the notifier: muted records and the summaries it sends."""

    def __init__(self) -> None:
        self.muted: list[tuple[Notification, str]] = []
        self.sent: list[Notification] = []
        self.stats = DeliveryStats()

    def mark_muted(self, notification: Notification, why: str) -> None:
        self.muted.append((notification, why))

    def submit(self, notification: Notification) -> None:
        self.sent.append(notification)


def record(message: str, levelno: int = logging.WARNING, created: float = 0.0) -> RecordSnapshot:
    return RecordSnapshot(
        "general", message, logging.getLevelName(levelno), levelno, "app", created,
        None, None, None, None, "app.py", 1, None, (), None, None, "",
    )  # fmt: skip


def test_quiet_hours_on_a_frozen_clock_mute_then_summarize_once(tmp_path: Path) -> None:
    """Inside the quiet window a record is muted; after it (and the grace) one silent summary
    says what was muted; a second gate on the same store sends none."""
    quiet = parse_quiet_hours("general=22:00-07:00 Europe/Berlin")
    notifier: Any = Recorder()
    gates = [
        MuteGate(lambda: SqliteMuteTable(tmp_path), stats=DeliveryStats(), quiet=quiet)
        for _ in range(2)
    ]
    with freeze_time(dt.datetime.fromtimestamp(at("2026-12-06 23:00"), dt.UTC)) as clock:
        for gate in gates:
            gate.tick(notifier)
        assert gates[0].take(
            record("nightly batch slow", created=at("2026-12-06 23:00")), None, notifier
        )
        assert gates[1].take(
            record("nightly batch slow again", created=at("2026-12-06 23:30")), None, notifier
        )
        assert not gates[1].take(record("the disk is gone", logging.CRITICAL), None, notifier)
        clock.move_to(dt.datetime.fromtimestamp(at("2026-12-07 07:00"), dt.UTC))
        for gate in gates:
            gate.tick(notifier)  # the window ended: tallies written, no summary yet (grace)
        assert notifier.sent == []
        assert not gates[0].take(record("morning"), None, notifier)
        clock.tick(SUMMARY_GRACE + 1)
        for gate in gates:
            gate.tick(notifier)
            gate.close()  # its table's connection (Python 3.13 warns of one left open)
    assert [why.startswith("muted (quiet-") for _, why in notifier.muted] == [True, True]
    (summary,) = notifier.sent
    assert summary.silent
    assert summary.alert_type == "general"
    assert summary.title == "2 records muted: general"
    assert ("Muted", "general: 2") in summary.fields
    assert ("Sample", "nightly batch slow") in summary.fields


def test_the_summary_says_counts_per_type_first_last_and_a_sample() -> None:
    """The summary goes to the type that held most and lists every type's count."""
    tally = Tally()
    tally.add("error", 10.0, "first error")
    tally.add("error", 30.0, "second error")
    other = Tally()
    other.add("general", 5.0, "a warning")
    tally.merge(other)
    made = summary_notification(Mute("m1", "all", 0.0, 60.0, reason="deploy", by="host"), tally)
    assert made.alert_type == "error"
    assert made.silent
    assert ("Muted", "error: 2, general: 1") in made.fields
    assert "1970-01-01 00:00:05 UTC" in made.message
    assert "00:00:30" in made.message
    assert "(deploy)" in made.message


def test_a_flood_while_muted_writes_a_bounded_history_and_counts_the_rest(tmp_path: Path) -> None:
    """Past the history bound per refresh muted records are only counted: the summary and the
    stats still have every one, and a refresh writes the next ones again."""
    notifier: Any = Recorder()
    gate = MuteGate(lambda: SqliteMuteTable(tmp_path), stats=DeliveryStats())
    gate.history_bound = 2
    table = SqliteMuteTable(tmp_path)
    with freeze_time("2026-12-06 12:00:00") as clock:
        now = dt.datetime(2026, 12, 6, 12, tzinfo=dt.UTC).timestamp()
        table.add(Mute("m1", "general", now, now + 60))
        gate.tick(notifier)
        for i in range(5):
            assert gate.take(record(f"flood {i}", created=now), None, notifier)
        assert [n.message for n, _ in notifier.muted] == ["flood 0", "flood 1"]
        assert notifier.stats.get("muted") == 3
        clock.tick(2)
        gate.tick(notifier)
        assert gate.take(record("after a refresh", created=now + 2), None, notifier)
        assert len(notifier.muted) == 3
        clock.tick(60 + SUMMARY_GRACE)
        gate.tick(notifier)
    table.close()
    gate.close()
    (summary,) = notifier.sent
    assert ("Muted", "general: 6") in summary.fields
    assert ("Sample", "flood 0") in summary.fields
