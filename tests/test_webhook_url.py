"""Webhook URL validation and token redaction."""

from __future__ import annotations

import pytest

from discord_logging.errors import InvalidWebhookURL
from discord_logging.redaction import redact
from discord_logging.transport.webhook_url import normalize_hosts, parse_webhook_url

TOKEN = "abcDEF123_-xyz"


@pytest.mark.parametrize(
    "url",
    [
        f"https://discord.com/api/webhooks/123/{TOKEN}",
        f"https://discord.com/api/v10/webhooks/123/{TOKEN}",
        f"https://discordapp.com/api/webhooks/123/{TOKEN}",
        f"https://ptb.discord.com/api/v9/webhooks/123/{TOKEN}",
        f"https://canary.discord.com/api/webhooks/123/{TOKEN}/",
        f"https://discord.com/api/webhooks/123/{TOKEN}?thread_id=456",
        f"  https://DISCORD.com:443/api/webhooks/123/{TOKEN}  ",
    ],
)
def test_discord_urls_are_accepted(url: str) -> None:
    """Every Discord host and API version form parses, keeping id and token."""
    parsed = parse_webhook_url(url)
    assert parsed.webhook_id == "123"
    assert parsed.token == TOKEN


NO_PATH = "has no /api/webhooks/<numeric id>/<token> path"


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        (f'"https://discord.com/api/webhooks/123/{TOKEN}"', "is wrapped in quotes"),
        (f"'https://discord.com/api/webhooks/123/{TOKEN}'", "is wrapped in quotes"),
        (f"http://discord.com/api/webhooks/123/{TOKEN}", "https"),
        (f"https://discord.com:8443/api/webhooks/123/{TOKEN}", "https"),
        (f"https://evil.example/api/webhooks/123/{TOKEN}", "not a Discord host"),
        (f"https://discord.com.evil.example/api/webhooks/123/{TOKEN}", "not a Discord host"),
        (f"https://discord.com/api/webhooks/abc/{TOKEN}", NO_PATH),
        ("https://discord.com/api/webhooks/123", NO_PATH),
        (f"https://discord.com/webhooks/123/{TOKEN}", NO_PATH),
        (f"https://discord.com/api/webhooks/123/{TOKEN}/extra", NO_PATH),
        (f"https://user:pw@discord.com/api/webhooks/123/{TOKEN}", "user name"),
        (f"https://discord.com/api/webhooks/123/{TOKEN}?thread_id=x", "thread_id"),
        (f"https://discord.com/api/webhooks/123/{TOKEN}?foo=1", "has query parameters"),
        ("https://[::1/api", "not a URL"),
        ("", "is empty"),
        ("https://discord.com/api/webhooks/<id>/<token>", "still the placeholder"),
        ("https://discord.com/api/webhooks/123/<token>", "still the placeholder"),
        ("https://discord.com/api/webhooks/%3Cid%3E/x", "still the placeholder"),
        (f"discord.com/api/webhooks/123/{TOKEN}", "has no scheme. Fix: copy the whole URL"),
        (f"//discord.com/api/webhooks/123/{TOKEN}", "has no scheme"),
    ],
)
def test_bad_urls_are_refused_without_showing_the_token(url: str, problem: str) -> None:
    """Each malformed or foreign URL is refused with a reason and no token in the message."""
    with pytest.raises(InvalidWebhookURL, match=problem) as info:
        parse_webhook_url(url)
    assert TOKEN not in str(info.value)
    assert str(info.value).count("Fix:") == 1  # one piece of advice, once


def test_allowed_hosts_admit_http_and_other_hosts() -> None:
    """A listed host (with port) may use http and a path prefix; the host must match exactly."""
    url = f"http://127.0.0.1:8080/proxy/api/v10/webhooks/123/{TOKEN}"
    parsed = parse_webhook_url(url, ["127.0.0.1:8080"])
    assert parsed.secret_url(wait=True) == url + "?wait=true"
    with pytest.raises(InvalidWebhookURL):
        parse_webhook_url(url, ["127.0.0.1:9090"])
    assert (
        parse_webhook_url("https://proxy.local/api/webhooks/1/t", "proxy.local").netloc
        == "proxy.local"
    )


def test_allowed_host_still_needs_http_scheme() -> None:
    """Listing a host does not admit non-HTTP schemes."""
    with pytest.raises(InvalidWebhookURL, match="scheme"):
        parse_webhook_url(f"ftp://proxy.local/api/webhooks/1/{TOKEN}", ["proxy.local"])


def test_repr_str_and_redacted_hide_the_token() -> None:
    """repr(), str() and .redacted all show .../webhooks/<id>/*** only."""
    parsed = parse_webhook_url(f"https://discord.com/api/v10/webhooks/123/{TOKEN}?thread_id=9")
    for text in (repr(parsed), str(parsed), parsed.redacted, f"{parsed}", f"{[parsed]}"):
        assert TOKEN not in text
        assert "/webhooks/123/***" in text
    assert parsed.secret_url(wait=False).endswith(f"/123/{TOKEN}?thread_id=9")


def test_redact_replaces_every_token_in_free_text() -> None:
    """Tokens inside arbitrary text (log lines, exception messages) are replaced."""
    text = (
        f"POST https://discord.com/api/webhooks/1/{TOKEN}?wait=true failed; "
        f"retry 'http://127.0.0.1:5/api/webhooks/22/{TOKEN}' now"
    )
    out = redact(text)
    assert TOKEN not in out
    assert out.count("/***") == 2
    assert redact("no tokens here") == "no tokens here"


def test_normalize_hosts_accepts_strings_and_lists() -> None:
    """The allow-list parses comma lists and iterables, lower-cased, blanks ignored."""
    assert normalize_hosts(" A.example, b:1 ,,") == {"a.example", "b:1"}
    assert normalize_hosts(["X"]) == {"x"}
    assert normalize_hosts(None) == frozenset()
