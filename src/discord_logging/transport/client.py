"""The HTTP edge: one pooled ``httpx.AsyncClient`` posting to Execute Webhook.

Everything Discord answers, and every transport failure, comes back as a classified
:class:`~.outcome.Outcome` with the rate-limit headers; nothing here raises for delivery errors.
Any exception from the transport counts as a transport failure, not only ``httpx.HTTPError``:
at interpreter exit the name lookup's executor refuses work with a ``RuntimeError``, and a
custom transport may raise anything.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Final

import httpx

from .. import __version__
from ..redaction import redact
from ..render.packing import OutgoingMessage
from ..render.payload import build_payload, silent_flags
from .answer_body import ACCEPT_ENCODING, read_capped
from .channels import WebhookChannel
from .cutoff import Cutoff, Progress
from .headers import BAN_COOLDOWN, RateLimitHeaders, parse_rate_limit_headers
from .outcome import Outcome, OutcomeKind, classify, transport_failure
from .webhook_url import WebhookURL

PROJECT_URL: Final = "https://github.com/discord-logging/discord-logging"
USER_AGENT: Final = f"DiscordBot ({PROJECT_URL}, {__version__})"


# The HTTP stack's loggers: httpx logs one INFO line per request ("HTTP Request: POST <url>"),
# httpcore a DEBUG trace per step (one logger per module: a logger's filters see only the
# records created on it, not those of its children).
HTTP_LOGGERS: Final = (
    "httpx",
    "httpcore",
    "httpcore.connection",
    "httpcore.http11",
    "httpcore.http2",
    "httpcore.proxy",
    "httpcore.socks",
)
# Set while this library's client sends: the records httpx and httpcore log meanwhile are
# about our requests, not the application's (a context variable follows the task).
_OWN_REQUEST: ContextVar[bool] = ContextVar("discord_logging_own_request", default=False)


class _HTTPLogFilter(logging.Filter):
    """On the HTTP stack's loggers: the library's own request lines stay out of the
    application's logs unless the user configured that logger (a level or a handler of its
    own on ``httpx``, say); every URL left in is redacted, for every handler."""

    def filter(self, record: logging.LogRecord) -> bool:
        if _OWN_REQUEST.get() and not _configured_by_user(record.name):
            return False
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - never break someone else's logging
            return True
        redacted = redact(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


def _configured_by_user(name: str) -> bool:
    """Whether the logger ``name``, or its parent up to the package (``httpx``,
    ``httpcore``), has a level or a handler of its own: someone asked for these records."""
    while True:
        logger = logging.getLogger(name)
        if logger.level != logging.NOTSET or logger.handlers:
            return True
        if "." not in name:
            return False
        name = name.rsplit(".", 1)[0]


_FILTER: Final = _HTTPLogFilter()


def _content(body: dict[str, Any] | None, files: Sequence[tuple[str, bytes]]) -> dict[str, Any]:
    """httpx's arguments for the body: JSON, or multipart with ``files`` (named ``files[0]``...
    and listed as new ``attachments`` after those ``body`` keeps)."""
    if not files:
        return {"json": body}
    body = dict(body or {})
    kept = list(body.get("attachments", []))
    new = [{"id": str(i), "filename": name} for i, (name, _) in enumerate(files)]
    body["attachments"] = kept + new
    return {
        "data": {"payload_json": json.dumps(body)},
        "files": {
            f"files[{i}]": (name, data, "text/plain; charset=utf-8")
            for i, (name, data) in enumerate(files)
        },
    }


def install_log_redaction() -> None:
    """Attach the filter to the loggers of our HTTP stack (idempotent)."""
    for name in HTTP_LOGGERS:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)


@contextmanager
def own_requests() -> Iterator[None]:
    """Mark what the HTTP stack logs inside as this library's own request lines."""
    token = _OWN_REQUEST.set(True)
    try:
        yield
    finally:
        _OWN_REQUEST.reset(token)


@dataclass(frozen=True, slots=True)
class SendResult:
    """An outcome with the bucket headers and how long the request took."""

    outcome: Outcome
    headers: RateLimitHeaders
    latency: float
    sent: bool = True
    """False when the request certainly never reached Discord (the connection was refused or
    could not be set up): its rate-limit slot counts nowhere."""


class WebhookClient:
    """Posts messages to webhooks over one connection pool."""

    def __init__(
        self,
        *,
        timeout: float = 10.0,
        username: str | None = None,
        avatar_url: str | None = None,
        mentions: dict[str, tuple[str, ...]] | None = None,
        silent: Mapping[str, bool] | None = None,
        ban_cooldown: float = BAN_COOLDOWN,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        install_log_redaction()
        self.timeout = timeout
        self.username = username
        self.avatar_url = avatar_url
        self.mentions = mentions or {}
        self.silent = silent  # None: no message is sent silent (DISCORD_SILENT not in use)
        self.ban_cooldown = ban_cooldown
        self._cutoff = Cutoff()
        self._traced = transport is None  # httpx's own transport is httpcore's: it traces
        self._http = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout),
            headers={"User-Agent": USER_AGENT, "Accept-Encoding": ACCEPT_ENCODING},
            limits=httpx.Limits(max_connections=20, max_keepalive_connections=10),
            transport=transport,
            follow_redirects=False,  # a redirect could carry the token to another host
            # HTTPS_PROXY / HTTP_PROXY / NO_PROXY and SSL_CERT_FILE are honoured, as by curl:
            # networks without a direct route out need them (see transport/environment.py).
            trust_env=True,
        )

    def payload(
        self,
        message: OutgoingMessage,
        *,
        post_title: str | None = None,
        applied_tags: Sequence[str] = (),
    ) -> dict[str, Any]:
        """The JSON body for ``message``, with the pings configured for its alert types, its
        flags (silent or not), its link buttons, and for a new forum post its title and tags."""
        pings: list[str] = []
        for alert_type in sorted(message.alert_types):
            pings.extend(t for t in self.mentions.get(alert_type, ()) if t not in pings)
        body = build_payload(
            message.embeds, username=self.username, avatar_url=self.avatar_url, mentions=pings
        )
        if self.silent is not None and (flags := silent_flags(message, self.silent, bool(pings))):
            body["flags"] = flags
        if message.components:
            body["components"] = list(message.components)
        if post_title:
            body["thread_name"] = post_title
            if applied_tags:
                body["applied_tags"] = list(applied_tags)
        return body

    async def execute(
        self,
        url: WebhookURL,
        message: OutgoingMessage,
        *,
        timeout: float | None = None,
        thread_id: str | None = None,
        post_title: str | None = None,
        applied_tags: Sequence[str] = (),
    ) -> SendResult:
        """POST ``message``; multipart with the attachment when it has one. ``timeout``
        (seconds) bounds this request instead of the client's (used at the close deadline).
        ``thread_id`` posts into a thread; ``post_title`` (and ``applied_tags``) opens a new
        post of a forum channel."""
        body = self.payload(message, post_title=post_title, applied_tags=applied_tags)
        target = url.secret_url(
            wait=True, thread_id=thread_id, with_components=bool(message.components)
        )
        files = [message.attachment] if message.attachment is not None else []
        return await self.request("POST", target, body, files, timeout)

    async def request(
        self,
        method: str,
        target: str,
        body: dict[str, Any] | None,
        files: Sequence[tuple[str, bytes]] = (),
        timeout: float | None = None,
    ) -> SendResult:
        """One request to Discord, its answer classified: JSON, or multipart with ``files``
        (named ``files[0]``... and listed as new ``attachments`` after those ``body`` keeps)."""
        started = time.monotonic()
        limit = httpx.Timeout(timeout) if timeout is not None else httpx.USE_CLIENT_DEFAULT
        progress = Progress(traced=self._traced)
        traced = {"trace": progress.trace}
        try:
            content_kwargs = _content(body, files)
            async with self._cutoff.bounded():
                with own_requests():  # our own request lines stay out of the application's log
                    response, content = await self._exchange(
                        method, target, timeout, timeout=limit, extensions=traced, **content_kwargs
                    )
        except TimeoutError:
            # Cut off at the close deadline (not httpx's timeouts: those are httpx errors).
            return self._failed(
                f"cut off at the close deadline while {progress.step}",
                started,
                sent=progress.sent,
                may_have_posted=progress.written,
            )
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            # Nothing was sent: no connection, so Discord counted nothing.
            return self._failed(f"{type(exc).__name__}: {exc}", started, sent=False)
        except (httpx.WriteTimeout, httpx.WriteError) as exc:
            # The body was not sent whole: Discord acts on a whole request only.
            return self._failed(f"{type(exc).__name__}: {exc}", started)
        except httpx.TimeoutException as exc:
            # A read timeout: the request went whole; Discord may have posted it.
            return self._failed(
                f"timed out after {time.monotonic() - started:.1f}s ({exc!r})",
                started,
                may_have_posted=True,
            )
        except (httpx.ReadError, httpx.RemoteProtocolError) as exc:
            # The connection broke while the answer was awaited: the request went whole.
            return self._failed(f"{type(exc).__name__}: {exc}", started, may_have_posted=True)
        except Exception as exc:  # noqa: BLE001 - any transport failure is retryable
            # Raised before a connection carried the request (a name lookup refused at exit,
            # a local protocol error): nothing reached Discord.
            return self._failed(f"{type(exc).__name__}: {exc}", started)
        outcome = classify(
            response.status_code, response.headers, content, ban_cooldown=self.ban_cooldown
        )
        return SendResult(
            outcome, parse_rate_limit_headers(response.headers), time.monotonic() - started
        )

    async def edit(
        self,
        url: WebhookURL,
        message_id: str,
        body: dict[str, Any],
        *,
        thread_id: str | None = None,
        files: Sequence[tuple[str, bytes]] = (),
        timeout: float | None = None,
    ) -> SendResult:
        """PATCH one of this webhook's messages (in ``thread_id`` when it is in a thread).
        Discord replaces only the fields ``body`` sends, and an edit notifies nobody again;
        ``body["attachments"]`` lists the files to keep, ``files`` are added. An answer 404
        with code 10008 means the message is gone (discord-api.md, "Editing ...")."""
        target = url.message_url(
            message_id, thread_id=thread_id, with_components="components" in body
        )
        return await self.request("PATCH", target, body, files, timeout)

    async def _exchange(
        self, method: str, target: str, seconds: float | None, **arguments: Any
    ) -> tuple[httpx.Response, bytes]:
        """One request, and its answer's body read with a cap within ``seconds`` (the
        client's timeout when None): docs/architecture.md, "Untrusted input", rule 3."""
        async with self._http.stream(method, target, **arguments) as response:
            content = await read_capped(response, self.timeout if seconds is None else seconds)
        return response, content

    async def _get(self, url: WebhookURL) -> tuple[httpx.Response, bytes]:
        """GET the webhook itself (posts nothing), within the close deadline once it is set."""
        async with self._cutoff.bounded():
            with own_requests():
                return await self._exchange("GET", url.secret_url(wait=False), None)

    async def probe(self, url: WebhookURL) -> Outcome:
        """GET the webhook (posts nothing): 200 means the webhook exists and the token is right."""
        try:
            response, content = await self._get(url)
        except Exception as exc:  # noqa: BLE001 - any transport failure is retryable
            return transport_failure(f"{type(exc).__name__}: {exc}")
        if response.status_code == 200:
            return Outcome(OutcomeKind.DELIVERED, 200)
        return classify(response.status_code, response.headers, content)

    async def lookup(self, url: WebhookURL) -> WebhookChannel | Outcome:
        """GET the webhook (posts nothing): the channel (and guild) it posts into, or the
        classified failure (401/404 disabled, 429, 5xx, transport) when Discord did not say."""
        try:
            response, content = await self._get(url)
        except Exception as exc:  # noqa: BLE001 - any transport failure is retryable
            return transport_failure(f"{type(exc).__name__}: {exc}")
        if response.status_code != 200:
            return classify(response.status_code, response.headers, content)
        try:
            data = json.loads(content)
            channel_id = data.get("channel_id") if isinstance(data, dict) else None
            guild_id = data.get("guild_id") if isinstance(data, dict) else None
        except ValueError:
            channel_id = guild_id = None
        if not isinstance(channel_id, str | int) or not str(channel_id):
            return transport_failure("the webhook's answer names no channel_id")
        return WebhookChannel(str(channel_id), str(guild_id) if guild_id else None)

    @staticmethod
    def _failed(
        description: str, started: float, *, sent: bool = True, may_have_posted: bool = False
    ) -> SendResult:
        return SendResult(
            transport_failure(description, may_have_posted=may_have_posted),
            RateLimitHeaders(),
            time.monotonic() - started,
            sent=sent,
        )

    def cut_off_at(self, seconds: float) -> None:
        """No request outlives ``seconds`` from now, those in flight included (the close
        deadline): a request cut off comes back as a transport failure, marked as maybe
        posted when its body went out whole. On the client's loop."""
        self._cutoff.cut_at(seconds)

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()
