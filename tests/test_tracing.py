"""OpenTelemetry trace and span ids on alerts, and the link to the trace, with the real
opentelemetry packages, through DiscordHandler, Notifier and FakeDiscord."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.instrumentation.logging import LoggingInstrumentor
from opentelemetry.sdk.trace import TracerProvider
from startkit import started_handler
from waiting import FAILSAFE

from discord_logging import (
    DiscordHandler,
    MemoryDeadLetters,
    Notification,
    NotificationResult,
    Notifier,
)
from discord_logging.errors import ConfigurationError
from discord_logging.testing import FakeDiscord

TEMPLATE = "https://tracing.example/trace/{trace_id}?span={span_id}"
PROVIDER = TracerProvider()  # the global provider can be set once per process
trace.set_tracer_provider(PROVIDER)
TRACER = PROVIDER.get_tracer("tests")


def fields(embed: dict[str, Any]) -> dict[str, str]:
    return {field["name"]: field["value"] for field in embed.get("fields", [])}


def ids(span: trace.Span) -> tuple[str, str]:
    context = span.get_span_context()
    return format(context.trace_id, "032x"), format(context.span_id, "016x")


@pytest.fixture
def alerting(fake_discord: FakeDiscord) -> Iterator[tuple[logging.Logger, DiscordHandler]]:
    """Logger ``app.traced`` with a DiscordHandler linking to TEMPLATE."""
    handler = DiscordHandler(
        webhooks={"general": fake_discord.add_webhook()},
        allowed_hosts=fake_discord.host,
        aggregate_window=0,
        trace_url_template=TEMPLATE,
    )
    log = logging.getLogger("app.traced")
    log.addHandler(handler)
    log.propagate = False
    yield log, handler
    handler.close()


def embeds(fake: FakeDiscord, handler: DiscordHandler) -> list[dict[str, Any]]:
    assert handler.flush(FAILSAFE)
    return [e for m in fake.messages for e in m.embeds]


def test_the_active_span_gives_trace_and_span_fields(
    fake_discord: FakeDiscord, alerting: tuple[logging.Logger, DiscordHandler]
) -> None:
    """Inside a span: Trace (a link from the template) and Span fields; outside: neither."""
    log, handler = alerting
    with TRACER.start_as_current_span("checkout") as span:
        log.error("payment failed")
    log.error("nightly report failed")
    traced, untraced = embeds(fake_discord, handler)
    trace_id, span_id = ids(span)
    url = f"https://tracing.example/trace/{trace_id}?span={span_id}"
    assert fields(traced)["Trace"] == f"[{trace_id}]({url})"
    assert fields(traced)["Span"] == span_id
    assert "Trace" not in fields(untraced)
    assert "Span" not in fields(untraced)


def test_instrumentor_attributes_are_used_and_not_repeated_as_extras(
    fake_discord: FakeDiscord, alerting: tuple[logging.Logger, DiscordHandler]
) -> None:
    """LoggingInstrumentor's otelTraceID/otelSpanID are the fields; "0" (no span) means none;
    its otel* attributes are not shown as fields of their own."""
    log, handler = alerting
    instrumentor = LoggingInstrumentor()
    instrumentor.instrument(inject_trace_context=True, enable_log_auto_instrumentation=False)
    try:
        with TRACER.start_as_current_span("checkout") as span:
            log.error("payment failed")
        log.error("nightly report failed")  # the instrumentor stamps "0"
    finally:
        instrumentor.uninstrument()
    traced, untraced = embeds(fake_discord, handler)
    trace_id, span_id = ids(span)
    assert fields(traced)["Trace"].startswith(f"[{trace_id}](")
    assert fields(traced)["Span"] == span_id
    assert not any(name.startswith("otel") for name in fields(traced))
    assert "Trace" not in fields(untraced)


def test_record_attributes_win_over_the_active_span(
    fake_discord: FakeDiscord, alerting: tuple[logging.Logger, DiscordHandler]
) -> None:
    """Ids a record already carries are kept (a record made elsewhere, e.g. replayed from a
    queue); they are quoted in the link, and a record without a span id links without one."""
    log, handler = alerting
    with TRACER.start_as_current_span("elsewhere"):
        log.error("replayed", extra={"otelTraceID": "abc/def", "otelSpanID": "0"})
    [embed] = embeds(fake_discord, handler)
    assert fields(embed)["Trace"] == "[abc/def](https://tracing.example/trace/abc%2Fdef?span=)"
    assert "Span" not in fields(embed)


def test_without_a_template_the_trace_is_plain_text(fake_discord: FakeDiscord) -> None:
    """No DISCORD_TRACE_URL_TEMPLATE: the trace id is shown without a link."""
    handler = DiscordHandler(
        webhooks={"general": fake_discord.add_webhook()}, allowed_hosts=fake_discord.host
    )
    log = logging.getLogger("app.plain")
    log.addHandler(handler)
    log.propagate = False
    with TRACER.start_as_current_span("checkout") as span:
        log.error("payment failed")
    [embed] = embeds(fake_discord, handler)
    handler.close()
    assert fields(embed)["Trace"] == ids(span)[0]


def test_the_notification_carries_the_link(fake_discord: FakeDiscord) -> None:
    """A kept notification has trace_id, span_id and the rendered trace_url, for every later
    use (history, dead letters, link buttons)."""
    url = fake_discord.add_webhook()
    fake_discord.set_status_override(url.split("/")[-2], 403)
    kept = MemoryDeadLetters()
    handler = DiscordHandler(
        webhooks={"general": url},
        allowed_hosts=fake_discord.host,
        trace_url_template="https://tracing.example/t/{trace_id}",
        dead_letters=kept,
    )
    log = logging.getLogger("app.kept")
    log.addHandler(handler)
    log.propagate = False
    with TRACER.start_as_current_span("checkout") as span:
        log.error("payment failed")
    handler.flush(FAILSAFE)
    handler.close()
    [letter] = kept.letters()
    trace_id, span_id = ids(span)
    assert letter.notification.trace_id == trace_id
    assert letter.notification.span_id == span_id
    assert letter.notification.trace_url == f"https://tracing.example/t/{trace_id}"


async def test_send_inside_a_span_links_to_its_trace(fake_discord: FakeDiscord) -> None:
    """Notifier.send() (no log record) takes the ids of the span active where it is called."""
    seen: list[Notification] = []

    def listen(notification: Notification, result: NotificationResult, webhook: str) -> None:
        seen.append(notification)

    async with Notifier(
        webhooks={"general": fake_discord.add_webhook()},
        allowed_hosts=fake_discord.host,
        trace_url_template=TEMPLATE,
        listeners=[listen],
    ) as notifier:
        with TRACER.start_as_current_span("deploy") as span:
            result = await notifier.send("general", "Deploy finished")
    assert result.ok
    trace_id, span_id = ids(span)
    [notification] = seen
    assert notification.trace_url == f"https://tracing.example/trace/{trace_id}?span={span_id}"
    [embed] = fake_discord.messages[0].embeds
    assert fields(embed)["Span"] == span_id


def test_a_broken_tracer_costs_no_alert(
    fake_discord: FakeDiscord,
    alerting: tuple[logging.Logger, DiscordHandler],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """If reading the current span raises, the alert goes without trace fields."""
    log, handler = alerting

    def broken() -> trace.Span:
        raise RuntimeError("tracer gone")

    monkeypatch.setattr(trace, "get_current_span", broken)
    log.error("payment failed")
    [embed] = embeds(fake_discord, handler)
    assert "Trace" not in fields(embed)


@pytest.mark.parametrize(
    ("template", "problem"),
    [
        ("tracing.example/{trace_id}", "is not an http:// or https:// URL"),
        ("https://tracing.example/{trace_id} x", "is not an http:// or https:// URL"),
        ("https://tracing.example/{span}", "has an unknown placeholder: {span}"),
        ("https://tracing.example/{trace_id}/{a}{}", "has unknown placeholders: {}, {a}"),
        ("https://tracing.example/{span_id}", "has no {trace_id} placeholder"),
        ("https://tracing.example/{trace_id", "is not a template"),
        ("https://tracing.example/{trace_id:d}", "is not a template"),
        ("https://tracing.example/" + "x" * 600 + "{trace_id}", "more than 512"),
    ],
)
def test_a_bad_template_fails_at_start_up(
    fake_discord: FakeDiscord, template: str, problem: str
) -> None:
    """The error names the variable, the problem and the fix."""
    with pytest.raises(ConfigurationError) as caught:
        started_handler(
            webhooks={"general": fake_discord.add_webhook()},
            allowed_hosts=fake_discord.host,
            trace_url_template=template,
        )
    message = str(caught.value)
    assert "trace_url_template: " in message  # named as given: the keyword
    assert problem in message
    assert "https://tracing.example/trace/{trace_id}" in message  # the fix's example


def test_the_template_comes_from_the_environment(
    fake_discord: FakeDiscord, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DISCORD_TRACE_URL_TEMPLATE is read like every setting; blank means none."""
    monkeypatch.setenv("DISCORD_TRACE_URL_TEMPLATE", " https://t.example/{trace_id} ")
    webhooks = {"general": fake_discord.add_webhook()}
    handler = DiscordHandler(webhooks=webhooks, allowed_hosts=fake_discord.host)
    assert handler.settings.trace_url_template == "https://t.example/{trace_id}"
    handler.close()
    monkeypatch.setenv("DISCORD_TRACE_URL_TEMPLATE", "")
    handler = DiscordHandler(webhooks=webhooks, allowed_hosts=fake_discord.host)
    assert handler.settings.trace_url_template is None
    handler.close()


def test_an_application_without_opentelemetry_pays_nothing_for_it(
    fake_discord: FakeDiscord,
    alerting: tuple[logging.Logger, DiscordHandler],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """When opentelemetry.trace was never imported, no span is looked for (with or without
    extras on the record), and the alert has no trace fields."""
    log, handler = alerting
    monkeypatch.delitem(sys.modules, "opentelemetry.trace")
    with TRACER.start_as_current_span("invisible"):
        log.error("plain")
        log.error("with an extra", extra={"order": 7})
    plain, extra = embeds(fake_discord, handler)
    assert "Trace" not in fields(plain)
    assert "Trace" not in fields(extra)
    assert fields(extra)["order"] == "7"
