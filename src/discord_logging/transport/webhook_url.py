"""Webhook URLs: parsed once, validated against the host allow-list, shown only redacted."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Final
from urllib.parse import parse_qs, urlsplit

from ..errors import InvalidWebhookURL
from ..redaction import REDACTED

DISCORD_HOSTS: Final = frozenset(
    {"discord.com", "discordapp.com", "ptb.discord.com", "canary.discord.com"}
)
_DISCORD_PATH: Final = re.compile(
    r"/api(?:/v(?P<version>\d+))?/webhooks/(?P<id>\d+)/(?P<token>[^/]+)/?"
)
# Allowed extra hosts (proxies, loopback test servers) may put a prefix before /api.
_PROXY_PATH: Final = re.compile(
    r"(?P<prefix>(?:/[^/]+)*?)/api(?:/v(?P<version>\d+))?/webhooks/(?P<id>\d+)/(?P<token>[^/]+)/?"
)
_TOKEN: Final = re.compile(r"[A-Za-z0-9_.\-]+")
# .env.example and the docs write webhook URLs as .../webhooks/<id>/<token>.
_PLACEHOLDER: Final = re.compile(r"<[^<>/]*>|\{[^{}/]*\}|%3C", re.IGNORECASE)
_COPY_HINT: Final = "(Channel settings > Integrations > Webhooks > Copy Webhook URL)"
# Discord's old host still serves Execute Webhook, but Discord now limits it separately from
# discord.com (observed, issue 21): a URL copied years ago is posted to discord.com, where the
# documented limits, and the limits this library keeps, apply.
_RENAMED_HOSTS: Final = {"discordapp.com": "discord.com"}


@dataclass(frozen=True, slots=True)
class WebhookURL:
    """One Discord webhook. ``str()`` and ``repr()`` never show the token."""

    scheme: str
    netloc: str
    prefix: str
    api_version: int | None
    webhook_id: str
    token: str = field(repr=False)
    thread_id: str | None = None

    @property
    def identity(self) -> str:
        """Where a message lands, as a name safe to store and show: the webhook id, a digest
        of the token (a webhook recreated with a new token is another destination) and the
        thread. Dead letters are kept under it: a letter goes only to the webhook it was
        written for (docs/architecture.md, "A letter's life", rule 2)."""
        digest = hashlib.sha256(self.token.encode()).hexdigest()[:12]
        thread = f"-t{self.thread_id}" if self.thread_id else ""
        return f"w{self.webhook_id}-{digest}{thread}"

    @property
    def redacted(self) -> str:
        """The URL with its token replaced: ``https://discord.com/api/webhooks/<id>/***``."""
        return self._build(REDACTED)

    def secret_url(
        self, *, wait: bool = True, thread_id: str | None = None, with_components: bool = False
    ) -> str:
        """The real URL to POST to (into ``thread_id`` instead of the URL's own thread, when
        given). Never log or display it."""
        return self._with_query(self._build(self.token), wait, thread_id, with_components)

    def message_url(
        self, message_id: str, *, thread_id: str | None = None, with_components: bool = False
    ) -> str:
        """The real URL of one of this webhook's messages (``GET``/``PATCH``/``DELETE``);
        Discord needs ``thread_id`` for a message in a thread. Never log or display it."""
        url = f"{self._build(self.token)}/messages/{message_id}"
        return self._with_query(url, False, thread_id, with_components)

    def _with_query(
        self, url: str, wait: bool, thread_id: str | None, with_components: bool
    ) -> str:
        query = []
        if wait:
            query.append("wait=true")
        thread = thread_id or self.thread_id
        if thread:
            query.append(f"thread_id={thread}")
        if with_components:
            # Without it Discord drops the components of a plain webhook's message.
            query.append("with_components=true")
        return url + ("?" + "&".join(query) if query else "")

    def _build(self, token: str) -> str:
        version = f"/v{self.api_version}" if self.api_version is not None else ""
        base = f"{self.scheme}://{self.netloc}{self.prefix}/api{version}/webhooks/"
        return f"{base}{self.webhook_id}/{token}"

    def __str__(self) -> str:
        return self.redacted

    def __repr__(self) -> str:
        return f"WebhookURL({self.redacted!r})"


def normalize_hosts(hosts: Iterable[str] | str | None) -> frozenset[str]:
    """Parse ``DISCORD_ALLOWED_HOSTS``: a comma list of ``host`` or ``host:port``, an IPv6
    address bare or in brackets (``::1``, ``[::1]:8080``). ValueError names an entry that is
    none of these."""
    if hosts is None:
        return frozenset()
    items = hosts.split(",") if isinstance(hosts, str) else list(hosts)
    return frozenset(_host_entry(h) for h in items if h and h.strip())


def _host_entry(entry: str) -> str:
    """One allowed host as URLs are compared with it: lower case, IPv6 in brackets."""
    text = entry.strip().lower().rstrip("/")
    if text.count(":") > 1 and not text.startswith("["):  # a bare IPv6 address
        text = f"[{text}]"
    try:
        parts = urlsplit(f"//{text}")
        host, port = parts.hostname, parts.port
    except ValueError:
        host = port = None
    if not host or parts.path or parts.query or parts.username is not None:
        raise ValueError(
            f"{entry.strip()!r} is not a host or host:port (no scheme or path; an IPv6 "
            "address in brackets, e.g. [::1]:8080)"
        )
    return netloc_of(host, port)


def netloc_of(host: str, port: int | None) -> str:
    """``host[:port]`` for a URL: an IPv6 address in brackets (``[::1]:8080``)."""
    shown = f"[{host}]" if ":" in host else host
    return shown if port is None else f"{shown}:{port}"


def parse_webhook_url(raw: str, allowed_hosts: Iterable[str] | str = ()) -> WebhookURL:
    """Validate ``raw`` and return it parsed, or raise :class:`InvalidWebhookURL` saying why.

    Discord's own hosts need ``https`` and the exact ``/api[/vN]/webhooks/<id>/<token>`` path.
    Any other host, or ``http``, is accepted only when listed in ``allowed_hosts``, so that a
    typo or an injected variable cannot ship logs to a stranger.
    """
    allowed = normalize_hosts(allowed_hosts)
    text = raw.strip()
    if not text:
        raise InvalidWebhookURL(f"is empty. Fix: paste the webhook URL from Discord {_COPY_HINT}")
    if len(text) > 1 and text[0] == text[-1] and text[0] in "\"'":
        # docker --env-file and some .env writers pass the quotes through.
        raise InvalidWebhookURL(
            "is wrapped in quotes. Fix: remove the quotes around the URL (docker --env-file "
            "and Compose env files keep them as part of the value)"
        )
    if _PLACEHOLDER.search(text):
        raise InvalidWebhookURL(
            f"is still the placeholder (<id>/<token>). Fix: paste your webhook URL from Discord "
            f"{_COPY_HINT}"
        )
    if "://" not in text:
        raise InvalidWebhookURL(
            "has no scheme. Fix: copy the whole URL, which starts with "
            f"https://discord.com/api/webhooks/, from Discord {_COPY_HINT}"
        )
    try:
        parts = urlsplit(text)
        hostname = (parts.hostname or "").lower()
        port = parts.port
    except ValueError:
        raise InvalidWebhookURL(
            f"is not a URL. Fix: copy the webhook URL from Discord {_COPY_HINT}"
        ) from None
    netloc = netloc_of(hostname, port)
    listed = netloc in allowed or netloc_of(hostname, None) in allowed
    if not listed:
        if hostname not in DISCORD_HOSTS:
            raise InvalidWebhookURL(
                f"host {netloc or '(none)'!r} is not a Discord host. Fix: use discord.com, or "
                "add the host to DISCORD_ALLOWED_HOSTS (allowed_hosts=) if it is your proxy"
            )
        if parts.scheme != "https" or port not in (None, 443):
            raise InvalidWebhookURL(
                "uses http or another port. Fix: use https:// on the default port (http and "
                "other ports are accepted only for hosts listed in DISCORD_ALLOWED_HOSTS)"
            )
        netloc = netloc_of(_RENAMED_HOSTS.get(hostname, hostname), port)
    elif parts.scheme not in ("http", "https"):
        raise InvalidWebhookURL(f"scheme {parts.scheme!r} is not http or https. Fix: use https://")
    if parts.username or parts.password:
        raise InvalidWebhookURL("contains a user name or password. Fix: remove them")
    pattern = _PROXY_PATH if listed else _DISCORD_PATH
    match = pattern.fullmatch(parts.path)
    if match is None or not _TOKEN.fullmatch(match.group("token")):
        raise InvalidWebhookURL(
            "has no /api/webhooks/<numeric id>/<token> path (the token may be missing). Fix: "
            f"copy the whole URL Discord shows for the webhook {_COPY_HINT}"
        )
    query = parse_qs(parts.query)
    unknown = set(query) - {"thread_id", "wait"}
    if unknown:
        raise InvalidWebhookURL(f"has query parameters {sorted(unknown)}. Fix: keep only thread_id")
    thread_ids = query.get("thread_id", [])
    if thread_ids and not thread_ids[0].isdigit():
        raise InvalidWebhookURL("has a thread_id that is not a number. Fix: use the thread's id")
    version = match.group("version")
    return WebhookURL(
        scheme=parts.scheme,
        netloc=netloc,
        prefix=match.groupdict().get("prefix") or "",
        api_version=int(version) if version else None,
        webhook_id=match.group("id"),
        token=match.group("token"),
        thread_id=thread_ids[0] if thread_ids else None,
    )
