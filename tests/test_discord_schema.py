"""The test-side Execute Webhook validator: Discord's OpenAPI schema plus the unwritten rules."""

from __future__ import annotations

import importlib.util
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from discord_schema import SCHEMA, SCHEMA_PATH, validate_webhook_payload, webhook_payload_violations

from discord_logging.render import message_limits as limits

Payload = dict[str, Any]


def valid_payload() -> Payload:
    """A payload using every part of an embed the library renders."""
    return {
        "content": "<@&123> disk almost full",
        "username": "prod alerts",
        "avatar_url": "https://example.com/avatar.png",
        "allowed_mentions": {"parse": [], "roles": ["123"]},
        "embeds": [
            {
                "type": "rich",
                "title": "ERROR in app.db",
                "description": "connection refused \N{WARNING SIGN}\N{GRINNING FACE}",
                "url": "https://example.com/runbook?id=1&x=%20",
                "color": 0xE74C3C,
                "timestamp": "2024-05-01T12:00:00.123456+00:00",
                "fields": [
                    {"name": "host", "value": "web-1", "inline": True},
                    {"name": "count", "value": "3"},
                ],
                "footer": {"text": "discord-logging", "icon_url": "https://example.com/i.png"},
                "author": {"name": "app.db", "url": "https://example.com/"},
            }
        ],
    }


def _embeds_totalling(total: int) -> Payload:
    """Two individually valid embeds whose texts add up to ``total`` characters."""
    first = limits.EMBED_DESCRIPTION
    return {
        "allowed_mentions": {"parse": []},
        "embeds": [{"description": "a" * first}, {"description": "b" * (total - first)}],
    }


def _mutated(change: Callable[[Payload], object]) -> Callable[[], Payload]:
    def build() -> Payload:
        payload = valid_payload()
        change(payload)
        return payload

    return build


def _embed(payload: Payload) -> dict[str, Any]:
    embed: dict[str, Any] = payload["embeds"][0]
    return embed


INVALID = [
    pytest.param(
        _mutated(lambda p: _embed(p).update(title="t" * 257)),
        "$.embeds[0].title: 257 UTF-16 units, more than 256",
        id="title-too-long",
    ),
    pytest.param(
        _mutated(lambda p: _embed(p).update(title="\N{GRINNING FACE}" * 129)),
        "$.embeds[0].title: 258 UTF-16 units, more than 256",
        id="title-too-long-in-utf16-only",
    ),
    pytest.param(
        _mutated(lambda p: p.update(embeds=[{"description": "x"}] * 11)),
        "$.embeds: 11 embeds, more than 10",
        id="11-embeds",
    ),
    pytest.param(
        lambda: _embeds_totalling(6001),
        "$.embeds: 6001 characters (UTF-16 units) over all embeds, more than 6000",
        id="6001-total-over-2-embeds",
    ),
    pytest.param(
        _mutated(
            lambda p: _embed(p).update(fields=[{"name": f"n{i}", "value": "v"} for i in range(26)])
        ),
        "$.embeds[0].fields: 26 fields, more than 25",
        id="26-fields",
    ),
    pytest.param(
        _mutated(lambda p: _embed(p)["fields"][1].update(value="")),
        "$.embeds[0].fields[1].value: must not be empty",
        id="empty-field-value",
    ),
    pytest.param(
        _mutated(lambda p: p.pop("allowed_mentions")),
        "$.allowed_mentions: missing",
        id="missing-allowed-mentions",
    ),
    pytest.param(
        _mutated(lambda p: p.update(allowed_mentions={"parse": ["roles"], "roles": ["123"]})),
        "$.allowed_mentions: parse contains 'roles' while a 'roles' id list is given",
        id="parse-roles-conflict",
    ),
    pytest.param(
        _mutated(lambda p: _embed(p).update(color=0x1000000)),
        "$.embeds[0].color: 16777216 is greater than the maximum of 16777215 [schema]",
        id="bad-color",
    ),
    pytest.param(
        _mutated(lambda p: p.update(username="Discord alerts")),
        "$.username: contains 'discord'",
        id="username-with-discord",
    ),
    pytest.param(
        _mutated(lambda p: _embed(p).update(description="broken \ud800 text")),
        "$.embeds[0].description: lone surrogate",
        id="lone-surrogate",
    ),
    pytest.param(
        lambda: {"content": "", "embeds": [], "allowed_mentions": {"parse": []}},
        "$: empty message",
        id="empty-message",
    ),
    pytest.param(
        _mutated(lambda p: p.update(avatar_url="not a url")),
        "$.avatar_url: 'not a url' is not a 'uri' [schema]",
        id="bad-avatar-url",
    ),
    pytest.param(
        _mutated(lambda p: _embed(p).update(timestamp="yesterday")),
        "$.embeds[0].timestamp: 'yesterday' is not an ISO 8601 timestamp",
        id="bad-timestamp",
    ),
]


def test_valid_payload_is_accepted() -> None:
    """A realistic payload, emoji and mention whitelist included, passes every check."""
    payload = valid_payload()
    validate_webhook_payload(payload)
    validate_webhook_payload(json.loads(json.dumps(payload)))


def test_minimal_payload_is_accepted() -> None:
    """Content plus an explicit empty allowed_mentions is all Discord needs."""
    validate_webhook_payload({"content": "hi", "allowed_mentions": {"parse": []}})


def test_exactly_6000_over_embeds_is_accepted() -> None:
    """The 6000 total is inclusive."""
    validate_webhook_payload(_embeds_totalling(limits.MESSAGE_EMBED_TOTAL))


@pytest.mark.parametrize(("build", "expected"), INVALID)
def test_violation_is_rejected(build: Callable[[], Payload], expected: str) -> None:
    """Each kind of violation raises AssertionError naming the path and the rule broken."""
    payload = build()
    with pytest.raises(AssertionError, match=re.escape(expected)):
        validate_webhook_payload(payload)


def test_every_violation_is_listed() -> None:
    """Problems are reported all at once, not just the first one found."""
    payload = valid_payload()
    payload["username"] = "clyde"
    _embed(payload)["fields"][0]["name"] = ""
    _embed(payload)["footer"] = {"icon_url": "https://example.com/i.png"}
    problems = "\n".join(webhook_payload_violations(payload))
    assert "$.username: contains 'clyde'" in problems
    assert "$.embeds[0].fields[0].name: must not be empty" in problems
    assert "$.embeds[0].footer.text: required string missing" in problems


def test_schema_limits_agree_with_library_limits() -> None:
    """The numbers in Discord's schema are the ones discord_logging.render.message_limits uses."""
    defs = SCHEMA["$defs"]
    body = defs["IncomingWebhookRequestPartial"]["properties"]
    embed = defs["RichEmbed"]["properties"]
    field = defs["RichEmbedField"]["properties"]
    assert body["content"]["maxLength"] == limits.CONTENT
    assert body["embeds"]["maxItems"] == limits.EMBEDS_PER_MESSAGE
    assert body["attachments"]["maxItems"] == limits.FILES_PER_MESSAGE
    assert body["username"]["minLength"] == limits.USERNAME_MIN
    assert body["username"]["maxLength"] == limits.USERNAME_MAX
    assert embed["title"]["maxLength"] == limits.EMBED_TITLE
    assert embed["description"]["maxLength"] == limits.EMBED_DESCRIPTION
    assert embed["fields"]["maxItems"] == limits.FIELDS_PER_EMBED
    assert embed["color"]["maximum"] == limits.COLOR_MAX
    assert field["name"]["maxLength"] == limits.FIELD_NAME
    assert field["value"]["maxLength"] == limits.FIELD_VALUE
    assert defs["RichEmbedFooter"]["properties"]["text"]["maxLength"] == limits.FOOTER_TEXT
    assert defs["RichEmbedAuthor"]["properties"]["name"]["maxLength"] == limits.AUTHOR_NAME


def test_schema_file_is_regenerated_from_spec() -> None:
    """The committed schema is exactly what extract_schema.py makes from the spec."""
    script = SCHEMA_PATH.parent / "extract_schema.py"
    spec = importlib.util.spec_from_file_location("extract_schema", script)
    assert spec is not None
    assert spec.loader is not None
    extract = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(extract)
    spec_path: Path = extract.DEFAULT_SPEC
    if not spec_path.is_file():
        pytest.skip(f"Discord OpenAPI spec not found at {spec_path}")
    built = extract.build(json.loads(spec_path.read_text(encoding="utf-8")))
    assert built == SCHEMA
