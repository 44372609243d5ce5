"""Silent and loud messages (SUPPRESS_NOTIFICATIONS, 4096) and link buttons, from the
settings to what FakeDiscord keeps over HTTP."""

from __future__ import annotations

import json
from typing import Any

import pytest
from discord_schema import validate_webhook_payload

from discord_logging.capture.direct import build_notification
from discord_logging.config.alert_options import SILENT_DEFAULTS, is_silent
from discord_logging.delivery.notifier import Notifier
from discord_logging.errors import ConfigurationError
from discord_logging.notification import Notification
from discord_logging.render.buttons import action_rows, first_buttons
from discord_logging.render.packing import OutgoingMessage
from discord_logging.render.payload import SUPPRESS_NOTIFICATIONS, silent_flags
from discord_logging.render.templating import EmbedRenderer
from discord_logging.settings import load_settings
from discord_logging.testing import FakeDiscord

URL = "https://discord.com/api/webhooks/1/token"


@pytest.fixture
def fake(fast_discord: FakeDiscord) -> FakeDiscord:
    """Discord's limits on short windows (conftest's fast_discord)."""
    return fast_discord


def message(*notifications: Notification, digest: bool = False) -> OutgoingMessage:
    return OutgoingMessage(
        notifications,
        tuple({"title": n.title} for n in notifications),
        digest=digest,
        alert_types=frozenset(n.alert_type for n in notifications),
    )


def note(alert_type: str, levelno: int = 20, **changes: Any) -> Notification:
    notification = build_notification(alert_type, "t", levelno=levelno)
    if changes:
        from dataclasses import replace

        notification = replace(notification, **changes)
    return notification


# -- silent and loud -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("alert_type", "silent"),
    [
        ("general", True),
        ("monitoring", True),
        ("tracklist", True),
        ("error", False),
        ("critical", False),
        ("security", False),
    ],
)
def test_default_silence_per_alert_type(alert_type: str, silent: bool) -> None:
    """General, monitoring and tracklist are silent by default; error, critical, security
    notify."""
    flags = silent_flags(message(note(alert_type)), SILENT_DEFAULTS, pinged=False)
    assert flags == (SUPPRESS_NOTIFICATIONS if silent else 0)


def test_digests_updates_mixes_pings_and_custom_types() -> None:
    """A digest follows `digests`, an incident's update `updates`; a message of several
    records is silent only if all are; a deliberate ping always notifies; a custom type not
    named is silent below ERROR."""
    table = SILENT_DEFAULTS
    assert silent_flags(message(note("error"), digest=True), table, False) == 4096
    assert silent_flags(message(note("error", count=5)), table, False) == 4096
    assert silent_flags(message(note("general"), note("error")), table, False) == 0
    assert silent_flags(message(note("general")), table, pinged=True) == 0
    assert silent_flags(message(note("billing", levelno=30)), table, False) == 4096
    assert silent_flags(message(note("billing", levelno=40)), table, False) == 0
    assert silent_flags(OutgoingMessage((), ()), table, False) == 0
    assert is_silent({"billing": False}, "billing", 10) is False


def test_silent_setting_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """DISCORD_SILENT pairs are merged over the defaults; a bad value names the variable."""
    monkeypatch.setenv("DISCORD_SILENT", "general=false, Billing=yes,digests=0")
    settings = load_settings(webhooks={"general": URL})
    assert settings.silent["general"] is False
    assert settings.silent["billing"] is True
    assert settings.silent["digests"] is False
    assert settings.silent["monitoring"] is True
    monkeypatch.setenv("DISCORD_SILENT", "general=sometimes")
    with pytest.raises(ConfigurationError, match="DISCORD_SILENT"):
        load_settings(webhooks={"general": URL})
    monkeypatch.setenv("DISCORD_SILENT", "general")
    with pytest.raises(ConfigurationError, match="not a key=value pair"):
        load_settings(webhooks={"general": URL})


async def test_flags_reach_discord(fake: FakeDiscord) -> None:
    """Over HTTP: a general alert arrives silent, an error loud, and a keyword makes error
    silent too."""
    n = Notifier(webhooks={"general": fake.add_webhook()}, allowed_hosts=fake.host)
    await n.send("general", "report ready", "nightly")
    await n.send("error", "primary database down", "!")
    await n.aclose()
    quiet = Notifier(
        webhooks={"general": fake.add_webhook()}, allowed_hosts=fake.host, silent={"error": True}
    )
    await quiet.send("error", "made silent", "!")
    await quiet.aclose()
    assert [m.flags for m in fake.messages] == [4096, 0, 4096]
    for sent in fake.messages:
        validate_webhook_payload(sent.payload)


# -- link buttons: settings ----------------------------------------------------------------------


def test_buttons_from_json_and_keyword_forms() -> None:
    """DISCORD_BUTTONS takes JSON: per type, a list of {label, url}, of [label, url] pairs, or
    one {label: url} object."""
    settings = load_settings(
        webhooks={"general": URL},
        buttons=json.dumps(
            {
                "error": [{"label": "Runbook", "url": "https://r.example/{{ logger }}"}],
                "Critical": [["Dashboard", "https://d.example"]],
                "security": {"Audit": "https://a.example"},
            }
        ),
    )
    assert {k: [(b.label, b.url) for b in v] for k, v in settings.buttons.items()} == {
        "error": [("Runbook", "https://r.example/{{ logger }}")],
        "critical": [("Dashboard", "https://d.example")],
        "security": [("Audit", "https://a.example")],
    }
    again = load_settings(webhooks={"general": URL}, buttons=settings.buttons)
    assert again.buttons == settings.buttons


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ('{"error": [{"label": "x", "url": "http://plain.example"}]}', "must start with https://"),
        ('{"error": [{"label": "' + "x" * 81 + '", "url": "https://a.example"}]}', "1 to 80"),
        ('{"error": [{"label": " ", "url": "https://a.example"}]}', "1 to 80"),
        ('{"error": ' + json.dumps([["b", "https://a.example"]] * 6) + "}", "at most 5"),
        ('{"error": [1]}', "a button is"),
        ('{"error": [{"label": 1, "url": "https://a"}]}', "are text"),
        ('{"error": "https://a.example"}', "buttons are a list"),
        ("[1, 2]", "must map alert types"),
        ("{not json", "is not JSON"),
        ('{"Bad Type!": []}', "not a valid name"),
    ],
)
def test_bad_buttons_fail_at_start_up(value: str, problem: str) -> None:
    """https only, a label of 1-80 characters, at most 5, well-formed JSON: else start-up
    fails naming DISCORD_BUTTONS and the problem."""
    with pytest.raises(ConfigurationError) as caught:
        load_settings(webhooks={"general": URL}, buttons=value)
    assert "buttons: " in str(caught.value)  # named as given: the keyword
    assert problem in str(caught.value)


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("https://r.example/{{ loger }}", "UndefinedError"),
        ("https://r.example/{{ logger ", "TemplateSyntaxError"),
        ("https://r.example/{{ 'x' * 600 }}", "512"),
    ],
)
def test_button_templates_are_checked_against_a_sample(url: str, problem: str) -> None:
    """A button template that fails, or renders to a link Discord refuses, stops the
    notifier's start-up naming DISCORD_BUTTONS."""
    with pytest.raises(ConfigurationError) as caught:
        Notifier(webhooks={"general": URL}, buttons={"billing": [("Runbook", url)]})
    assert "DISCORD_BUTTONS: billing" in str(caught.value)
    assert problem in str(caught.value)


# -- link buttons: rendering and delivery --------------------------------------------------------


def test_type_buttons_templated_and_record_buttons_checked() -> None:
    """The type's buttons are rendered from the record; the record's own follow; a record
    button Discord would refuse, or one past the fifth, is left out and counted."""
    dropped: list[int] = []
    renderer = EmbedRenderer(
        buttons=load_settings(
            webhooks={"general": URL},
            buttons={"error": [("Logs of {{ host }}", "https://logs.example/?l={{ logger }}")]},
        ).buttons,
        on_buttons_dropped=dropped.append,
    )
    own = (("Trace", "https://trace.example/1"), ("Bad", "javascript:alert(1)"))
    own += tuple((f"b{i}", f"https://b.example/{i}") for i in range(5))
    notification = note("error", buttons=own, logger="shop.pay", host="web-3")
    rendered = renderer.render(notification)
    assert rendered.buttons == (
        ("Logs of web-3", "https://logs.example/?l=shop.pay"),
        ("Trace", "https://trace.example/1"),
        ("b0", "https://b.example/0"),
        ("b1", "https://b.example/1"),
        ("b2", "https://b.example/2"),
    )
    assert dropped == [3]
    assert renderer.render(note("general")).buttons == ()


def test_a_button_template_failing_for_a_record_is_left_out() -> None:
    """A type's button whose template fails on a real record is left out and counted; the
    alert goes on."""
    renderer = EmbedRenderer(
        buttons=load_settings(
            webhooks={"general": URL},
            buttons={"error": [("T", "https://t.example/{{ extra['trace'] }}")]},
        ).buttons
    )
    assert renderer.render(note("error")).buttons == ()
    assert renderer.buttons_dropped == 1


def test_action_rows_label_records_sharing_a_label() -> None:
    """Buttons of several records: distinct ones in rows of 5; one label with two links says
    which embed each belongs to."""
    rows = action_rows(
        [
            [("Trace", "https://t/1"), ("Runbook", "https://r")],
            [("Trace", "https://t/2"), ("Runbook", "https://r")],
            [(f"x{i}", f"https://x/{i}") for i in range(5)],
        ]
    )
    labels = [[c["label"] for c in row["components"]] for row in rows]
    assert labels == [["Trace #1", "Runbook", "Trace #2", "x0", "x1"], ["x2", "x3", "x4"]]
    assert all(c["style"] == 5 and c["type"] == 2 for row in rows for c in row["components"])
    assert first_buttons([("a", "https://a")], [("a", "https://a")]) == (
        (("a", "https://a"),),
        0,
    )


async def test_buttons_reach_discord_with_with_components(fake: FakeDiscord) -> None:
    """Over HTTP: the action row is sent with ?with_components=true and FakeDiscord keeps it;
    a message without buttons has no components."""
    n = Notifier(
        webhooks={"general": fake.add_webhook()},
        allowed_hosts=fake.host,
        buttons={"error": [("Runbook", "https://runbooks.example/{{ alert_type }}")]},
    )
    await n.send("error", "boom", "m")
    await n.send("general", "fine", "m")
    await n.aclose()
    with_buttons, without = fake.messages
    assert with_buttons.components == [
        {
            "type": 1,
            "components": [
                {
                    "type": 2,
                    "style": 5,
                    "label": "Runbook",
                    "url": "https://runbooks.example/error",
                }
            ],
        }
    ]
    assert without.components == []
    validate_webhook_payload(with_buttons.payload)


def test_a_button_template_that_fails_is_refused_where_the_handler_is_created() -> None:
    """A link button's template that fails on a sample record is refused by
    ``DiscordHandler(...)`` itself (so ``dictConfig`` fails at once), not found later on the
    worker's start."""
    from discord_logging import DiscordHandler

    with pytest.raises(ConfigurationError, match="UndefinedError"):
        DiscordHandler(
            webhooks={"general": URL}, buttons={"error": [("Runbook", "https://r/{{ loger }}")]}
        )
