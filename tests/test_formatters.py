"""The handler's own Formatter, and records made by structlog and loguru, end to end through
DiscordHandler against FakeDiscord: the message follows the formatter, the embed keeps its
title, fields and traceback section (once)."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from typing import Any

import pytest
import structlog
from loguru import logger as loguru_logger
from waiting import FAILSAFE

from discord_logging import DiscordHandler
from discord_logging.testing import FakeDiscord

TRACEBACK = "Traceback (most recent call last):"


class Alerts:
    """A DiscordHandler on logger ``app`` (and the root of loguru), and what reached Discord."""

    def __init__(self, fake: FakeDiscord) -> None:
        self.fake = fake
        self.general, self.security = fake.add_webhook(), fake.add_webhook()
        self.handler = DiscordHandler(
            webhooks={"general": self.general, "security": self.security},
            allowed_hosts=fake.host,
            aggregate_window=0,
        )
        self.log = logging.getLogger("app")
        self.log.addHandler(self.handler)
        self.log.setLevel(logging.DEBUG)
        self.log.propagate = False

    def embeds(self, kind: str = "general") -> list[dict[str, Any]]:
        """What the webhook of ``kind`` received, once everything logged was delivered."""
        assert self.handler.flush(FAILSAFE)
        url = self.general if kind == "general" else self.security
        webhook_id = url.split("/")[-2]
        return [e for m in self.fake.messages_for(webhook_id) for e in m.embeds]


def fields(embed: dict[str, Any]) -> dict[str, str]:
    return {field["name"]: field["value"] for field in embed.get("fields", [])}


@pytest.fixture
def alerts(fake_discord: FakeDiscord) -> Iterator[Alerts]:
    alerts = Alerts(fake_discord)
    yield alerts
    alerts.handler.close()


@pytest.fixture
def structlog_events() -> Iterator[None]:
    """structlog's ProcessorFormatter set-up: events reach logging as dicts."""
    structlog.configure(
        processors=[
            structlog.stdlib.add_log_level,
            structlog.stdlib.add_logger_name,
            structlog.processors.TimeStamper(fmt="iso"),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    yield
    structlog.reset_defaults()


def processor_formatter(renderer: Any) -> logging.Formatter:
    return structlog.stdlib.ProcessorFormatter(
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer]
    )


# -- a stdlib Formatter on the handler ---------------------------------------------------------


def test_formatter_output_is_the_message_and_the_embed_keeps_its_sections(
    alerts: Alerts,
) -> None:
    """The formatter's line is the description; the title is the record's own message; the
    extras stay fields; the traceback is in its section once, not in the formatted text."""
    alerts.handler.setFormatter(logging.Formatter("[%(levelname)s] %(name)s: %(message)s"))
    try:
        {}["tax"]
    except KeyError:
        alerts.log.exception("totals of %s failed", "june.csv", extra={"rows": 17})
    [embed] = alerts.embeds()
    assert embed["title"] == "totals of june.csv failed"
    line, block = embed["description"].split("\n", 1)
    assert line == "[ERROR] app: totals of june.csv failed"
    assert block.startswith(f"```py\n{TRACEBACK}")
    assert embed["description"].count("KeyError: 'tax'") == 1
    assert fields(embed)["rows"] == "17"


def test_formatter_sees_the_record_other_handlers_see(alerts: Alerts) -> None:
    """Formatting for Discord leaves the record's exception for the next handler."""
    seen: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record)

    alerts.log.addHandler(Keep())
    alerts.handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    try:
        raise ValueError("v")
    except ValueError:
        alerts.log.exception("boom")
    [record] = seen
    assert record.exc_info is not None
    assert "ValueError: v" in logging.Formatter().format(record)
    [embed] = alerts.embeds()
    assert embed["description"].startswith("ERROR boom\n```py\n")


@pytest.mark.parametrize("fmt", [logging.BASIC_FORMAT, "%(message)s"])
def test_logging_default_formatter_counts_as_none(alerts: Alerts, fmt: str) -> None:
    """basicConfig(handlers=[...]) gives every handler "%(levelname)s:%(name)s:%(message)s":
    that (or a bare %(message)s) is not a format chosen for Discord: no description."""
    alerts.handler.setFormatter(logging.Formatter(fmt))
    alerts.log.error("disk %s full", "/var")
    [embed] = alerts.embeds()
    assert embed["title"] == "disk /var full"
    assert "description" not in embed


def test_a_failing_formatter_still_gives_the_alert(alerts: Alerts) -> None:
    """A formatter that raises: the record's message, with a note naming the error."""

    class Broken(logging.Formatter):
        def format(self, record: logging.LogRecord) -> str:
            raise RuntimeError("no")

    alerts.handler.setFormatter(Broken())
    alerts.log.error("disk %s full", "/var")
    [embed] = alerts.embeds()
    assert embed["title"] == "disk /var full"
    assert embed["description"] == "disk /var full (the handler's formatter failed: RuntimeError)"
    assert alerts.handler.stats()["delivered"] == 1


def test_formatter_colours_are_removed(alerts: Alerts) -> None:
    """ANSI colour sequences in the formatter's output do not reach Discord."""
    alerts.handler.setFormatter(logging.Formatter("\x1b[31m%(levelname)s\x1b[0m %(message)s"))
    alerts.log.error("disk full")
    [embed] = alerts.embeds()
    assert embed["description"] == "ERROR disk full"


def test_storm_samples_use_the_records_own_message(fake_discord: FakeDiscord) -> None:
    """With a time-stamping formatter, repeats still fold, and the summary's sample lists the
    messages, not lines that differ only by their time."""
    url = fake_discord.add_webhook()
    handler = DiscordHandler(
        webhooks={"general": url},
        allowed_hosts=fake_discord.host,
        incident_updates="message",  # the summary as a second message, to read it whole
    )
    handler.setFormatter(logging.Formatter("%(created)f %(message)s"))
    log = logging.getLogger("app.storm")
    log.addHandler(handler)
    log.propagate = False
    for _ in range(3):
        log.error("queue full")
    assert handler.flush(FAILSAFE)
    handler.close()
    first, summary = [e for m in fake_discord.messages for e in m.embeds]
    assert first["title"] == "queue full"
    assert summary["title"].startswith("queue full (x 3")
    assert "1 distinct message:" in summary["description"]


# -- structlog ---------------------------------------------------------------------------------


@pytest.mark.usefixtures("structlog_events")
def test_structlog_event_becomes_title_and_fields(alerts: Alerts) -> None:
    """Without a formatter: the event is the title, the keys are fields (not level, logger,
    timestamp: the embed has them), alert_type routes and is no field."""
    log = structlog.get_logger("app.structlog")  # a logging logger of structlog's factory
    log.warning("3 failed logins", user="bob", attempts=3, alert_type="security")
    [embed] = alerts.embeds("security")
    assert embed["title"] == "🔒 3 failed logins"
    assert "description" not in embed
    shown = fields(embed)
    assert {"user": "bob", "attempts": "3"}.items() <= shown.items()
    assert not {"alert_type", "event", "level", "logger", "timestamp"} & shown.keys()
    assert shown["Location"].startswith("tests/test_formatters.py:")


@pytest.mark.usefixtures("structlog_events")
def test_structlog_processor_formatter_output_is_the_message(alerts: Alerts) -> None:
    """ProcessorFormatter with JSONRenderer: the JSON line is the description, without the
    exception (the traceback section has it, once)."""
    alerts.handler.setFormatter(processor_formatter(structlog.processors.JSONRenderer()))
    log = structlog.get_logger("app.structlog")
    try:
        raise ConnectionError("db down")
    except ConnectionError:
        log.exception("checkout failed", cart="c-1")
    [embed] = alerts.embeds()
    assert embed["title"] == "checkout failed"
    line, block = embed["description"].split("\n", 1)
    rendered = json.loads(line)
    assert rendered["event"] == "checkout failed"
    assert rendered["cart"] == "c-1"
    assert "exception" not in rendered
    assert "exc_info" not in rendered
    assert block.startswith(f"```py\n{TRACEBACK}")
    assert embed["description"].count("ConnectionError: db down") == 1
    assert fields(embed)["cart"] == "c-1"


@pytest.mark.usefixtures("structlog_events")
def test_structlog_callsite_is_the_location(alerts: Alerts) -> None:
    """CallsiteParameterAdder's place is the Location (the logging logger here was not made
    by structlog's factory, so the record's own place is inside structlog); its keys are no
    fields."""
    structlog.configure(
        processors=[
            structlog.processors.CallsiteParameterAdder(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ]
    )
    structlog.get_logger("app").error("late")  # "app" exists already: a plain logging logger
    [embed] = alerts.embeds()
    shown = fields(embed)
    assert shown["Location"].startswith("tests/test_formatters.py:")
    assert shown["Location"].endswith(" in test_structlog_callsite_is_the_location")
    assert not {"pathname", "lineno", "func_name", "module", "thread"} & shown.keys()


@pytest.mark.usefixtures("structlog_events")
def test_structlog_rendered_exception_fills_the_traceback_section(alerts: Alerts) -> None:
    """format_exc_info already turned exc_info into an "exception" text: that text is the
    traceback section; it is no field."""
    structlog.configure(
        processors=[
            structlog.processors.format_exc_info,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ]
    )
    log = structlog.get_logger("app")
    try:
        raise KeyError("k")
    except KeyError:
        log.error("lookup failed", exc_info=True)
    [embed] = alerts.embeds()
    assert embed["description"].startswith(f"```py\n{TRACEBACK}")
    assert embed["description"].count("KeyError: 'k'") == 1
    assert "exception" not in fields(embed)


def test_event_dict_exception_forms(alerts: Alerts) -> None:
    """An event's exc_info may be True (the exception being handled), an exception, or a
    tuple; a stack rendered by StackInfoRenderer follows the traceback."""
    error = ValueError("bad")
    try:
        raise error
    except ValueError:
        info = sys.exc_info()
        alerts.log.error({"event": "as true", "exc_info": True})
    alerts.log.error({"event": "as exception", "exc_info": error})
    alerts.log.error({"event": "as tuple", "exc_info": info})
    alerts.log.error({"event": "with stack", "stack": "Stack (most recent call last):\n  here"})
    alerts.log.error({"event": "nothing to show", "exc_info": True})  # none being handled
    embeds = {e["title"]: e for e in alerts.embeds()}
    for title in ("as true", "as exception", "as tuple"):
        assert "ValueError: bad" in embeds[title]["description"], title
    assert embeds["with stack"]["description"].endswith("  here\n```")
    assert "description" not in embeds["nothing to show"]


def test_event_dicts_of_different_events_are_not_one_storm(fake_discord: FakeDiscord) -> None:
    """Two events logged from one place are two problems: the event names the storm."""
    url = fake_discord.add_webhook()
    handler = DiscordHandler(
        webhooks={"general": url}, allowed_hosts=fake_discord.host, incident_updates="message"
    )
    log = logging.getLogger("app.events")
    log.addHandler(handler)
    log.propagate = False
    for event in ("disk full", "queue full", "disk full"):
        log.error({"event": event})
    assert handler.flush(FAILSAFE)
    handler.close()
    titles = [e["title"] for m in fake_discord.messages for e in m.embeds]
    assert titles[:2] == ["disk full", "queue full"]
    assert titles[2].startswith("disk full (x 2")


def test_hostile_event_dict_is_absorbed(alerts: Alerts) -> None:
    """An event whose name or keys do not print still becomes an alert."""

    class Hostile:
        def __str__(self) -> str:
            raise RuntimeError("no")

        __repr__ = __str__

    # A logger of its own, made now: pytest attaches its capturing handlers (which would
    # print the record, and raise) to the non-propagating loggers that exist when a test starts.
    log = logging.getLogger("app.hostile")
    log.addHandler(alerts.handler)
    log.propagate = False
    log.error({"event": Hostile(), Hostile(): 1, 7: "seven"})
    [embed] = alerts.embeds()
    assert embed["title"] == "<unprintable Hostile>"
    assert fields(embed)["<unprintable Hostile>"] == "1"
    assert fields(embed)["7"] == "seven"


# -- loguru ------------------------------------------------------------------------------------


@pytest.fixture
def loguru_sink(alerts: Alerts) -> Iterator[Any]:
    """``add(format=None)``: the handler as a loguru sink (loguru's default format)."""
    added: list[int] = []

    def add(**options: Any) -> None:
        added.append(loguru_logger.add(alerts.handler, **options))

    yield add
    for sink in added:
        loguru_logger.remove(sink)


def test_loguru_default_format_stays_out_of_the_title(alerts: Alerts, loguru_sink: Any) -> None:
    """The time | level | place prefix of loguru's format is removed; bind() values are
    fields and alert_type routes."""
    loguru_sink()
    loguru_logger.bind(alert_type="security", user="bob").warning("3 failed logins")
    [embed] = alerts.embeds("security")
    assert embed["title"] == "🔒 3 failed logins"
    assert fields(embed)["user"] == "bob"
    assert "extra" not in fields(embed)


def test_loguru_traceback_shows_once(alerts: Alerts, loguru_sink: Any) -> None:
    """loguru appends its traceback to the text: it moves to the traceback section."""
    loguru_sink(diagnose=False, backtrace=False)
    try:
        raise OSError("disk gone")
    except OSError:
        loguru_logger.exception("backup failed")
    [embed] = alerts.embeds()
    assert embed["title"] == "backup failed"
    assert embed["description"].startswith(f"```py\n{TRACEBACK}")
    assert embed["description"].count("OSError: disk gone") == 1


def test_loguru_exception_without_traceback_shows_once(alerts: Alerts, loguru_sink: Any) -> None:
    """An exception that was never raised has no traceback: loguru's line stays in the
    message, and no second copy is formatted."""
    loguru_sink(format="{message}")
    loguru_logger.opt(exception=ValueError("not raised")).error("odd")
    [embed] = alerts.embeds()
    assert embed["title"] == "odd"
    assert embed["description"].count("ValueError: not raised") == 1


def test_loguru_format_of_your_own_is_kept(alerts: Alerts, loguru_sink: Any) -> None:
    """A format other than loguru's default is what the user chose: the title keeps it."""
    loguru_sink(format="{level}: {message}")
    loguru_logger.error("queue full")
    [embed] = alerts.embeds()
    assert embed["title"] == "ERROR: queue full"


def test_a_stdlib_extra_named_extra_keeps_its_traceback(alerts: Alerts) -> None:
    """A plain record whose extra happens to be a dict named "extra" is no loguru record:
    its own traceback is still formatted."""
    try:
        raise KeyError("k")
    except KeyError:
        alerts.log.exception("lookup failed", extra={"extra": {"a": 1}})
    [embed] = alerts.embeds()
    assert "KeyError: 'k'" in embed["description"]
    assert fields(embed)["a"] == "1"


def test_a_formatter_that_cannot_format_the_exception(alerts: Alerts) -> None:
    """A formatter whose formatException raises: the traceback section says so; the alert
    goes out with its message."""

    class NoTracebacks(logging.Formatter):
        def formatException(self, ei: Any) -> str:
            raise RuntimeError("no")

    alerts.handler.setFormatter(NoTracebacks("%(levelname)s %(message)s"))
    try:
        raise ValueError("v")
    except ValueError:
        alerts.log.exception("failed")
    [embed] = alerts.embeds()
    assert embed["title"] == "failed"
    assert "(could not format the exception: RuntimeError)" in embed["description"]
