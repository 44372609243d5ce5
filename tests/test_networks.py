"""Networks: an outbound proxy from HTTP_PROXY / NO_PROXY, the old discordapp.com host posted
to discord.com, IPv6 loopback and ``[host]:port`` allowed hosts; all through DiscordHandler."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from conftest import WEBHOOK
from entry_point import run
from forward_proxy import ForwardProxy
from startkit import started_handler
from waiting import FAILSAFE

from discord_logging import DiscordHandler
from discord_logging.errors import ConfigurationError
from discord_logging.testing import FakeDiscord
from discord_logging.transport.webhook_url import parse_webhook_url

PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY")


@pytest.fixture(autouse=True)
def _no_proxy_from_the_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test sets the proxy variables it means; none comes from the developer's shell."""
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)


@pytest.fixture
def fake() -> Iterator[FakeDiscord]:
    """A FakeDiscord with Discord's limits."""
    with FakeDiscord() as server:
        yield server


def deliver_one(handler: DiscordHandler, title: str) -> None:
    """Log one record through ``handler`` and wait for it to be delivered."""
    log = logging.getLogger("networks")
    log.addHandler(handler)
    log.propagate = False
    try:
        log.error(title)
        assert handler.flush(FAILSAFE)
    finally:
        log.removeHandler(handler)
        handler.close()


def titles(fake: FakeDiscord) -> list[str]:
    return [embed["title"] for message in fake.messages for embed in message.embeds]


def test_http_proxy_from_the_environment_carries_the_alert(
    fake: FakeDiscord, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """With HTTP_PROXY set, the alert goes through the proxy (absolute-form request to the
    webhook's host) and arrives; the proxy's record of it has no token."""
    url = fake.add_webhook()
    with ForwardProxy() as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        handler = DiscordHandler(webhooks={"general": url}, allowed_hosts=fake.host)
        deliver_one(handler, "through the proxy")
    assert titles(fake) == ["through the proxy"]
    posts = [entry for entry in proxy.forwarded if entry[0] == "POST"]
    assert posts
    assert posts[0][1] == fake.host
    assert posts[0][2].endswith("/***?wait=true")


def test_no_proxy_sends_directly(fake: FakeDiscord, monkeypatch: pytest.MonkeyPatch) -> None:
    """A host listed in NO_PROXY is reached directly: the proxy sees nothing."""
    url = fake.add_webhook()
    with ForwardProxy() as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        monkeypatch.setenv("NO_PROXY", "127.0.0.1")
        handler = DiscordHandler(webhooks={"general": url}, allowed_hosts=fake.host)
        deliver_one(handler, "straight")
    assert titles(fake) == ["straight"]
    assert proxy.forwarded == []


def test_discordapp_url_is_posted_to_discord_com() -> None:
    """A discordapp.com webhook URL is accepted and the request goes to discord.com (Discord
    limits the old host separately); the display shows discord.com too."""
    seen: list[httpx.URL] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request.url)
        return httpx.Response(200, json={"id": "1", "channel_id": "2"}, headers={"Via": "1.1"})

    old = "https://discordapp.com/api/webhooks/123456/tok-en_1"
    handler = DiscordHandler(
        webhooks={"general": old}, engine_options={"transport": httpx.MockTransport(answer)}
    )
    assert handler.settings.webhook_urls["general"].redacted == (
        "https://discord.com/api/webhooks/123456/***"
    )
    deliver_one(handler, "old host")
    assert seen
    assert {url.host for url in seen} == {"discord.com"}
    assert seen[0].path == "/api/webhooks/123456/tok-en_1"


@pytest.mark.slow  # a real process
def test_check_shows_the_discord_com_url() -> None:
    """check prints the webhook of a discordapp.com URL as discord.com."""
    old = WEBHOOK.replace("discord.com", "discordapp.com")
    done = run("check", env={"DISCORD_WEBHOOK_GENERAL": old})
    assert done.returncode == 0, done.stderr
    assert "https://discord.com/api/webhooks/111111111111111111/***" in done.stdout
    assert "discordapp.com" not in done.stdout


@pytest.mark.parametrize(
    ("entry", "url", "posted"),
    [
        ("[::1]:8080", "http://[::1]:8080/api/webhooks/1/t", "http://[::1]:8080/api/webhooks/1/t"),
        ("::1", "http://[::1]:8080/api/webhooks/1/t", "http://[::1]:8080/api/webhooks/1/t"),
        ("[::1]", "https://[::1]/x/api/webhooks/1/t", "https://[::1]/x/api/webhooks/1/t"),
        ("[FE80::1]:443", "https://[fe80::1]:443/api/webhooks/1/t", None),
        ("127.0.0.1:8080", "http://127.0.0.1:8080/api/webhooks/1/t", None),
    ],
)
def test_ipv6_allowed_hosts_give_bracketed_urls(entry: str, url: str, posted: str | None) -> None:
    """IPv6 hosts are allowed bare or in brackets, with or without a port, and the URL posted
    to keeps the brackets."""
    parsed = parse_webhook_url(url, [entry])
    assert parsed.secret_url(wait=False) == (posted or url)


def test_ipv6_port_must_match() -> None:
    """``[::1]:8080`` allows that port only."""
    with pytest.raises(ConfigurationError, match=r"host '\[::1\]:9090' is not a Discord host"):
        parse_webhook_url("http://[::1]:9090/api/webhooks/1/t", ["[::1]:8080"])


@pytest.mark.parametrize("entry", ["[::1", "host:port", "https://proxy.local", "proxy.local/x"])
def test_allowed_host_that_is_not_host_or_port_is_refused(entry: str) -> None:
    """An allowed-hosts entry that is not host or host:port stops start-up, naming it and the
    keyword it was given by."""
    with pytest.raises(ConfigurationError, match="allowed_hosts: ") as info:
        started_handler(webhooks={"general": WEBHOOK}, allowed_hosts=entry)
    assert repr(entry) in str(info.value)


def test_alert_reaches_fake_discord_on_ipv6_loopback(
    fake: FakeDiscord, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A webhook on http://[::1]:<port>, allowed through DISCORD_ALLOWED_HOSTS, is delivered."""
    try:
        url = fake.add_webhook(host="::1")
    except RuntimeError as exc:
        pytest.skip(f"no IPv6 loopback on this machine: {exc}")
    assert url.startswith(f"http://{fake.ipv6_host}/api/")
    monkeypatch.setenv("DISCORD_ALLOWED_HOSTS", fake.ipv6_host)
    monkeypatch.setenv("DISCORD_WEBHOOK_GENERAL", url)
    deliver_one(DiscordHandler(), "over IPv6")
    assert titles(fake) == ["over IPv6"]
