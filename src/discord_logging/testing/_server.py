"""FakeDiscord: a local HTTP server that answers like Discord's webhook endpoints: Execute
Webhook, its messages (read, edit, delete), forum posts."""

from __future__ import annotations

import re
import secrets
import threading
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlsplit

from discord_logging.testing import _responses as resp
from discord_logging.testing._faults import Fault, FaultControls, Silence, take
from discord_logging.testing._forums import land
from discord_logging.testing._http import (
    IPV6_LOOPBACK,
    LOOPBACK_NAME,
    Incoming,
    Outgoing,
    Server,
    ipv6_listener,
)
from discord_logging.testing._limits import FixedWindow, SlidingLog
from discord_logging.testing._models import (
    EditRecord,
    ForumPost,
    ReceivedMessage,
    RequestRecord,
    StoredMessage,
)
from discord_logging.testing._posted import MESSAGE_ROUTE, PostedMessages, Webhook
from discord_logging.testing._records import Records
from discord_logging.testing._validation import TOO_LARGE, Accepted, Rejection, parse_body

if TYPE_CHECKING:
    from types import TracebackType

# Discord serves the webhook at /api/webhooks/... (default version) and /api/v{N}/webhooks/...
_ROUTE = re.compile(r"^/api(?:/v\d+)?/webhooks/(?P<id>[^/]+)/(?P<token>[^/]+)$")
_DISCORD_EPOCH_MS = 1_420_070_400_000
# What _decide returns when the connection is to close with no answer (lose_answers).
_LOST_CONNECTION: Outgoing = Outgoing(0, [], b"")
# The host name of `named_host`: it needs a lookup, as discord.com does.


def _flag(query: dict[str, list[str]], name: str) -> bool:
    return query.get(name, ["false"])[-1].strip().lower() in ("true", "1")


class FakeDiscord(Records, FaultControls, PostedMessages):
    """A real HTTP server on 127.0.0.1 (free port) behaving like Discord's webhooks; also
    reachable as ``localhost`` (and on ::1 when ``localhost`` resolves there).

    It routes, validates and rate limits like Discord (per-webhook bucket announced in headers,
    hidden per-channel limit, global limit), records what it accepted, and can inject faults.
    Posted messages can be read, edited and deleted (their own bucket); a webhook of a forum
    channel (``add_webhook(forum=True)``) opens a post per message that names no thread.
    All state is behind one lock; every method may be called while requests are in flight.
    Rate-limit windows use ``clock`` (inject a fake one to move time without sleeping);
    ``set_latency`` delays use real time.
    """

    def __init__(
        self,
        *,
        webhook_limit: int = 5,
        webhook_window: float = 2.0,
        channel_limit: int = 30,
        channel_window: float = 60.0,
        global_limit: int = 50,
        global_window: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        port: int = 0,
    ) -> None:
        for name, value in (
            ("webhook_limit", webhook_limit),
            ("webhook_window", webhook_window),
            ("channel_limit", channel_limit),
            ("channel_window", channel_window),
            ("global_limit", global_limit),
            ("global_window", global_window),
        ):
            if value <= 0:
                raise ValueError(f"{name} must be positive, got {value!r}")
        # The configured limits, for reading; windows already open keep the values they had.
        self.webhook_limit = webhook_limit
        self.webhook_window = webhook_window
        self.channel_limit = channel_limit
        self.channel_window = channel_window
        self.global_limit = global_limit
        self.global_window = global_window
        self._clock = clock
        self._port = port  # 0: a free one (``discord-logging fake-discord --port`` sets it)
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._server: Server | None = None
        self._server_v6: Server | None = None
        self._stopping = False
        self._last_snowflake = 0
        self._webhooks: dict[str, Webhook] = {}
        self._messages: list[ReceivedMessage] = []
        self._stored: dict[str, StoredMessage] = {}  # message id -> as readers see it now
        self._threads: dict[str, ForumPost] = {}
        self._edits: list[EditRecord] = []
        # Routes on a webhook's messages have a bucket of their own (discord-api.md).
        self._message_buckets: dict[tuple[str, str], FixedWindow] = {}
        self._requests: list[RequestRecord] = []
        # Per-webhook buckets are keyed on id + token, like Discord's (the Bucket string is
        # shared by all webhooks, so it cannot be the key).
        self._buckets: dict[tuple[str, str], FixedWindow] = {}
        # The hidden limit is per channel (a thread is one of its own), shared by its webhooks.
        self._channels: dict[str, SlidingLog] = {}
        self._guild_id = self._snowflake()
        self._global = FixedWindow(global_limit, global_window)
        self._fail: list[Fault] = []
        self._lost: list[Fault] = []  # messages created whose answer is lost
        self._forced_429: list[Fault] = []
        self._forced_global_429: list[Fault] = []
        self._huge: list[Fault] = []  # answers of any size (issue 32)
        self.huge_bytes_written = 0
        self._overrides: dict[str, int] = {}
        self._latency = 0.0
        self._hang = False
        self._silence: Silence | None = None
        self._ban: float | None = None
        self._buffer = 0

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> FakeDiscord:
        """Bind ``port`` (a free one by default) on 127.0.0.1 and serve on a daemon thread;
        returns self. OSError when the port is taken."""
        with self._lock:
            if self._stopping:
                raise RuntimeError("a stopped FakeDiscord cannot be restarted; create a new one")
            if self._server is not None:
                return self
            self._server = Server(self._handle, port=self._port)
            self._server_v6 = ipv6_listener(self._handle, self._server.server_port)
        self._server.start()
        if self._server_v6 is not None:
            self._server_v6.start()
        return self

    @property
    def ipv6_host(self) -> str:
        """``[::1]:<port>``: the fake on the IPv6 loopback, listening there from the first
        use (for ``DISCORD_ALLOWED_HOSTS`` with URLs from ``add_webhook(host="::1")``).
        RuntimeError where this machine has no IPv6 loopback or the port is taken on it."""
        port = int(self.host.rsplit(":", 1)[1])
        with self._lock:
            started = None
            if self._server_v6 is None:
                try:
                    self._server_v6 = started = Server(self._handle, IPV6_LOOPBACK, port)
                except OSError as exc:
                    raise RuntimeError(f"cannot listen on [::1]:{port}: {exc}") from None
        if started is not None:
            started.start()
        return f"[{IPV6_LOOPBACK}]:{port}"

    def stop(self) -> None:
        """Stop serving; hung and delayed requests are released (their connections dropped)."""
        with self._cond:
            self._stopping = True
            servers = [self._server, self._server_v6]
            self._cond.notify_all()
        for server in servers:
            if server is not None:
                server.close()

    def __enter__(self) -> FakeDiscord:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>`` (only once started)."""
        return f"http://{self.host}"

    @property
    def host(self) -> str:
        """``127.0.0.1:<port>``: the value to put in ``DISCORD_ALLOWED_HOSTS``."""
        if self._server is None:
            raise RuntimeError("FakeDiscord is not started")
        return f"127.0.0.1:{self._server.server_port}"

    @property
    def named_host(self) -> str:
        """``localhost:<port>``: a host that needs a name lookup, as ``discord.com`` does
        (for ``DISCORD_ALLOWED_HOSTS`` with URLs from ``add_webhook(host=LOOPBACK_NAME)``)."""
        return self.host.replace("127.0.0.1", LOOPBACK_NAME, 1)

    def _base(self, host: str | None) -> str:
        if host is None or host == "127.0.0.1":
            return self.base_url
        if host == IPV6_LOOPBACK:
            return f"http://{self.ipv6_host}"
        if host != LOOPBACK_NAME:
            raise ValueError(
                f"host must be 127.0.0.1, {LOOPBACK_NAME!r} or {IPV6_LOOPBACK!r}, got {host!r}"
            )
        return f"http://{self.named_host}"

    # -- webhooks ----------------------------------------------------------------------------

    def add_webhook(
        self,
        webhook_id: str | int | None = None,
        token: str | None = None,
        channel: str | None = None,
        *,
        channel_id: str | int | None = None,
        guild_id: str | int | None = None,
        host: str | None = None,
        forum: bool = False,
        tags: Iterable[str | int] = (),
    ) -> str:
        """Register a webhook and return its URL ``{base_url}/api/v10/webhooks/{id}/{token}``.

        Ids default to fresh snowflakes, tokens to 68 URL-safe characters like Discord's.
        Each webhook gets its own channel unless ``channel_id`` (or its older name ``channel``)
        is given: webhooks in one channel share its hidden per-channel limit, and ``GET`` on
        the URL returns that ``channel_id`` and the ``guild_id`` (one guild per fake unless
        given). Re-adding an id replaces it. ``host="localhost"`` gives
        ``http://localhost:<port>/...``, reached through a name lookup (allow it with
        ``named_host``); ``host="::1"`` gives ``http://[::1]:<port>/...`` (``ipv6_host``).
        ``forum=True`` makes its channel a forum (or media) channel, whose posts may carry the
        ids in ``tags`` as ``applied_tags``.
        """
        if channel_id is None:
            channel_id = channel
        base_url = self._base(host)
        with self._lock:
            wid = str(webhook_id) if webhook_id is not None else self._snowflake()
            # 51 random bytes in URL-safe base64 are exactly 68 characters of [A-Za-z0-9_-].
            tok = token if token is not None else secrets.token_urlsafe(51)
            chan = str(channel_id) if channel_id is not None else self._snowflake()
            guild = str(guild_id) if guild_id is not None else self._guild_id
            name = f"Fake webhook {len(self._webhooks)}"
            forum_tags = frozenset(str(tag) for tag in tags)
            self._webhooks[wid] = Webhook(wid, tok, chan, name, guild, forum, forum_tags)
        return f"{base_url}/api/v10/webhooks/{wid}/{tok}"

    def webhook_url(self, webhook_id: str | int, host: str | None = None) -> str:
        """URL of a registered webhook (``host`` as for :meth:`add_webhook`)."""
        with self._lock:
            hook = self._webhooks[str(webhook_id)]
        return f"{self._base(host)}/api/v10/webhooks/{hook.id}/{hook.token}"

    def delete_webhook(self, webhook_id: str | int) -> None:
        """Delete a webhook: from now on it answers 404 ``Unknown Webhook`` (10015)."""
        with self._lock:
            self._webhooks.pop(str(webhook_id), None)

    # -- records (the queries are in _records.Records) ---------------------------------------

    def reset(self) -> None:
        """Clear messages (and their edits, forum posts), requests, every fault and all
        rate-limit windows; keep the webhooks."""
        with self._cond:
            self._messages.clear()
            self._requests.clear()
            self._stored.clear()
            self._threads.clear()
            self._edits.clear()
            self._buckets.clear()
            self._message_buckets.clear()
            self._channels.clear()
            self._global.clear()
            self._fail.clear()
            self._lost.clear()
            self._forced_429.clear()
            self._forced_global_429.clear()
            self._huge.clear()
            self._overrides.clear()
            self._latency = 0.0
            self._hang = False
            self._silence = None
            self._ban = None
            self._cond.notify_all()

    # -- request handling (server threads) ---------------------------------------------------

    def _snowflake(self) -> str:
        """A new snowflake-like id (19 digits today), strictly increasing. Call under the lock."""
        millis = int(time.time() * 1000) - _DISCORD_EPOCH_MS
        self._last_snowflake = max(millis << 22, self._last_snowflake + 1)
        return str(self._last_snowflake)

    def _handle(self, request: Incoming) -> Outgoing | None:
        silenced = self._silenced()
        if silenced is not None:
            return silenced if silenced.status else None
        if not self._wait_for_faults():
            return None
        split = urlsplit(request.target)
        query = parse_qs(split.query)
        match = _ROUTE.match(split.path)
        on_message = MESSAGE_ROUTE.match(split.path)
        # Parse and validate outside the lock: bodies can be up to 25 MiB.
        parsed: Accepted | Rejection | None = None
        if (match is not None and request.method == "POST") or (
            on_message is not None and request.method == "PATCH"
        ):
            content_type = request.headers.get("Content-Type", "")
            parsed = (
                TOO_LARGE
                if request.too_large
                else parse_body(
                    content_type,
                    request.body,
                    with_components=_flag(query, "with_components"),
                    edit=on_message is not None,
                )
            )
        with self._lock:
            if on_message is not None:
                return self._decide_message(request, split.path, on_message, query, parsed)
            answer = self._decide(request, split.path, match, query, parsed)
        return None if answer is _LOST_CONNECTION else answer

    def _decide(
        self,
        request: Incoming,
        path: str,
        match: re.Match[str] | None,
        query: dict[str, list[str]],
        parsed: Accepted | Rejection | None,
    ) -> Outgoing:
        """The answer to one request, in Discord's order of checks. Called under the lock."""
        now = self._clock()
        wid = match["id"] if match else None
        ctx = resp.Context(request.method, path, wid, now)
        if self._ban is not None:
            return self._record(ctx, resp.cloudflare_ban(self._ban))
        if match is None or wid is None:
            return self._record(ctx, resp.not_found(ctx))
        bucket = self._buckets.setdefault(
            (wid, match["token"]), FixedWindow(self.webhook_limit, self.webhook_window)
        )
        ctx.bucket = bucket
        hook = self._webhooks.get(wid)
        if request.method in ("GET", "HEAD"):
            return self._record(ctx, self._get_webhook(ctx, hook, match["token"]))
        if request.method != "POST" or parsed is None:
            return self._record(ctx, resp.method_not_allowed(ctx))
        # Injected faults come first and use up no limit.
        if fault := take(self._forced_global_429, wid):  # execute requests only
            return self._record(ctx, resp.rate_limited(ctx, fault.retry_after, is_global=True))
        if fault := take(self._fail, wid):
            return self._record(ctx, resp.error(ctx, fault.status))
        if fault := take(self._huge, wid):
            return self._record(ctx, self._huge_answer(fault))
        if fault := take(self._forced_429, wid):
            return self._record(ctx, resp.rate_limited(ctx, fault.retry_after, forced=True))
        # Discord's own limits: global per IP, then the announced per-webhook bucket. Invalid
        # requests (400/401/404) use up the bucket too, so these come before any other check.
        if (wait := self._global.try_acquire(now)) > 0:
            return self._record(ctx, resp.rate_limited(ctx, wait, is_global=True))
        if (wait := bucket.try_acquire(now)) > 0:
            return self._record(ctx, resp.rate_limited(ctx, wait))
        if hook is None:
            return self._record(ctx, resp.error(ctx, 404))
        if hook.token != match["token"]:
            return self._record(ctx, resp.error(ctx, 401))
        if (status := self._overrides.get(wid)) is not None:
            return self._record(ctx, resp.error(ctx, status))
        if isinstance(parsed, Rejection):
            return self._record(ctx, resp.json_response(ctx, parsed.status, parsed.body))
        message_id = self._snowflake()  # a new forum post's id is its starter message's
        thread_id = query.get("thread_id", [None])[-1]
        landing = land(hook, parsed.payload, thread_id, self._threads, message_id)
        if isinstance(landing, Rejection):
            return self._record(ctx, resp.json_response(ctx, landing.status, landing.body))
        # The hidden per-channel limit: only messages that would be created count, and the
        # headers do not announce it, so this 429 can come while X-RateLimit-Remaining > 0.
        # A thread is a channel of its own. Checked and counted under the lock, so requests
        # arriving together can never both take the last place.
        channel = self._channels.setdefault(
            landing.limit_channel, SlidingLog(self.channel_limit, self.channel_window)
        )
        if (wait := channel.try_acquire(now)) > 0:
            return self._record(ctx, resp.rate_limited(ctx, wait, scope="shared"))
        if landing.opened is not None:
            self._threads[landing.opened.thread_id] = landing.opened
        message = ReceivedMessage(
            webhook_id=wid,
            message_id=message_id,
            payload=parsed.payload,
            files=parsed.files,
            thread_id=landing.thread_id,
            received_at=now,
            channel_id=landing.thread_id or hook.channel_id,
        )
        self._messages.append(message)
        stored = self._store(message)
        if fault := take(self._lost, wid):  # created, but the answer never arrives whole
            if not fault.status:
                self._record(ctx, resp.error(ctx, 502))  # logged; the client sees a dropped line
                return _LOST_CONNECTION
            return self._record(ctx, resp.error(ctx, fault.status))
        if not _flag(query, "wait"):
            return self._record(ctx, resp.json_response(ctx, 204, None))
        return self._record(ctx, resp.json_response(ctx, 200, resp.message_object(stored, hook)))

    def _get_webhook(self, ctx: resp.Context, hook: Webhook | None, token: str) -> Outgoing:
        """``GET`` on the webhook URL returns the webhook object, as Discord's does."""
        if hook is None:
            return resp.error(ctx, 404)
        if hook.token != token:
            return resp.error(ctx, 401)
        return resp.json_response(
            ctx,
            200,
            resp.webhook_object(
                hook.id, hook.token, hook.channel_id, hook.name, guild_id=hook.guild_id
            ),
        )

    def _record(self, ctx: resp.Context, out: Outgoing) -> Outgoing:
        """Log the answer in ``requests``. Called under the lock."""
        headers = {name.lower(): value for name, value in out.headers}
        self._requests.append(
            RequestRecord(
                webhook_id=ctx.webhook_id,
                status=out.status,
                time=ctx.now,
                had_via="via" in headers,
                method=ctx.method,
                path=ctx.path,
                scope=headers.get("x-ratelimit-scope"),
                code=ctx.code,
            )
        )
        return out
