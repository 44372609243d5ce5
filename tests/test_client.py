"""Narrow client cases with respx: headers, wait=true, multipart shape, token-free logs."""

from __future__ import annotations

import json
import logging

import httpx
import pytest
import respx

from discord_logging import __version__
from discord_logging.render.packing import OutgoingMessage
from discord_logging.transport.client import WebhookClient
from discord_logging.transport.outcome import OutcomeKind
from discord_logging.transport.webhook_url import parse_webhook_url

URL = parse_webhook_url("https://discord.com/api/v10/webhooks/1/SECRET?thread_id=7")
MESSAGE = OutgoingMessage(notifications=(), embeds=({"type": "rich", "title": "t"},))


@respx.mock
async def test_user_agent_wait_and_thread() -> None:
    """Requests carry Discord's User-Agent form, wait=true and the thread id."""
    route = respx.post("https://discord.com/api/v10/webhooks/1/SECRET").mock(
        return_value=httpx.Response(200, json={"id": "99"})
    )
    client = WebhookClient()
    result = await client.execute(URL, MESSAGE)
    await client.aclose()
    request = route.calls.last.request
    assert request.headers["User-Agent"].startswith("DiscordBot (https://")
    assert request.headers["User-Agent"].endswith(f", {__version__})")
    assert request.url.params["wait"] == "true"
    assert request.url.params["thread_id"] == "7"
    assert result.outcome.kind is OutcomeKind.DELIVERED
    assert result.outcome.message_id == "99"


@respx.mock
async def test_attachment_is_multipart_with_payload_json() -> None:
    """A message with a file is sent as payload_json + files[0]."""
    route = respx.post("https://discord.com/api/v10/webhooks/1/SECRET").mock(
        return_value=httpx.Response(200, json={"id": "1"})
    )
    client = WebhookClient()
    message = OutgoingMessage((), MESSAGE.embeds, ("traceback.txt", b"full text"))
    await client.execute(URL, message)
    await client.aclose()
    body = route.calls.last.request.content
    assert b'name="payload_json"' in body
    assert b'name="files[0]"; filename="traceback.txt"' in body
    assert b"full text" in body


@respx.mock
async def test_httpx_log_lines_are_redacted(caplog: pytest.LogCaptureFixture) -> None:
    """httpx's INFO request log, which holds the URL, shows the token as ***."""
    respx.post("https://discord.com/api/v10/webhooks/1/SECRET").mock(
        return_value=httpx.Response(204)
    )
    client = WebhookClient()
    with caplog.at_level(logging.INFO, logger="httpx"):
        await client.execute(URL, MESSAGE)
    await client.aclose()
    assert "SECRET" not in caplog.text
    assert "/webhooks/1/***" in caplog.text


@respx.mock
async def test_probe_uses_get_and_classifies() -> None:
    """probe() GETs the webhook: 200 is healthy, 404 is disabled."""
    route = respx.get("https://discord.com/api/v10/webhooks/1/SECRET").mock(
        side_effect=[httpx.Response(200, json={}), httpx.Response(404, json={"code": 10015})]
    )
    client = WebhookClient()
    assert (await client.probe(URL)).kind is OutcomeKind.DELIVERED
    assert (await client.probe(URL)).kind is OutcomeKind.DISABLED
    await client.aclose()
    assert route.call_count == 2


async def test_mentions_union_for_alert_types() -> None:
    """Pings configured for the message's alert types are merged without duplicates."""
    client = WebhookClient(mentions={"critical": ("role:1",), "security": ("role:1", "user:2")})
    message = OutgoingMessage((), MESSAGE.embeds, alert_types=frozenset({"critical", "security"}))
    payload = client.payload(message)
    await client.aclose()
    assert payload["content"] == "<@&1> <@2>"
    assert (
        json.dumps(payload["allowed_mentions"]) == '{"parse": [], "roles": ["1"], "users": ["2"]}'
    )


class _Raising(httpx.AsyncBaseTransport):
    """A transport failing the way no httpx error class describes (interpreter exit, a bug)."""

    def __init__(self, exc: Exception) -> None:
        self.exc = exc

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        raise self.exc


@pytest.mark.parametrize(
    "exc",
    [
        RuntimeError("cannot schedule new futures after interpreter shutdown"),
        OSError("network is unreachable"),
        ValueError("https://discord.com/api/v10/webhooks/1/SECRET"),
    ],
)
async def test_any_transport_exception_is_a_retryable_failure(exc: Exception) -> None:
    """execute() and probe() turn every exception from the transport into a retryable transport
    failure naming the exception type, token redacted; nothing is raised."""
    client = WebhookClient(transport=_Raising(exc))
    try:
        sent = await client.execute(URL, MESSAGE)
        probed = await client.probe(URL)
    finally:
        await client.aclose()
    for outcome in (sent.outcome, probed):
        assert outcome.kind is OutcomeKind.RETRY
        assert outcome.status is None
        assert outcome.error is not None
        assert type(exc).__name__ in outcome.error
        assert "SECRET" not in outcome.error


@respx.mock
async def test_per_request_timeout_overrides_the_client_timeout() -> None:
    """execute(timeout=...) bounds that request (the close deadline) instead of the default."""
    route = respx.post("https://discord.com/api/v10/webhooks/1/SECRET").mock(
        return_value=httpx.Response(200, json={"id": "1"})
    )
    client = WebhookClient(timeout=10.0)
    await client.execute(URL, MESSAGE, timeout=0.75)
    await client.aclose()
    assert route.calls.last.request.extensions["timeout"]["read"] == 0.75


@pytest.mark.parametrize(
    ("exc", "sent", "may_have_posted"),
    [
        (httpx.ConnectError("refused"), False, False),
        (httpx.ConnectTimeout("no route"), False, False),
        (httpx.PoolTimeout("no connection free"), False, False),
        (httpx.WriteError("broken pipe"), True, False),
        (httpx.WriteTimeout("body not sent"), True, False),
        (httpx.ReadTimeout("no answer"), True, True),
        (httpx.RemoteProtocolError("Server disconnected without sending a response."), True, True),
        (httpx.ReadError("connection reset"), True, True),
    ],
)
async def test_a_failure_says_whether_discord_may_have_posted(
    exc: Exception, sent: bool, may_have_posted: bool
) -> None:
    """A request that never left (no connection) or left incomplete (a write failed) cannot
    have created a message; one whose answer was lost (read timeout, dropped connection) may
    have: the lane must then mark its retry as a possible repeat."""
    client = WebhookClient(transport=_Raising(exc))
    try:
        result = await client.execute(URL, MESSAGE)
    finally:
        await client.aclose()
    assert result.outcome.kind is OutcomeKind.RETRY
    assert result.sent is sent
    assert result.outcome.may_have_posted is may_have_posted
