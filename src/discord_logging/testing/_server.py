"""FakeDiscord: a local HTTP server that answers like Discord's Execute Webhook endpoint."""

from __future__ import annotations

import contextlib
import re
import secrets
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlsplit

from discord_logging.testing import _responses as resp
from discord_logging.testing._faults import Fault, take
from discord_logging.testing._http import Incoming, Outgoing, Server
from discord_logging.testing._limits import FixedWindow, SlidingLog
from discord_logging.testing._models import ReceivedMessage, RequestRecord
from discord_logging.testing._validation import TOO_LARGE, Accepted, Rejection, parse_body

if TYPE_CHECKING:
    from types import TracebackType

# Discord serves the webhook at /api/webhooks/... (default version) and /api/v{N}/webhooks/...
_ROUTE = re.compile(r"^/api(?:/v\d+)?/webhooks/(?P<id>[^/]+)/(?P<token>[^/]+)$")
_DISCORD_EPOCH_MS = 1_420_070_400_000
# What _decide returns when the connection is to close with no answer (lose_answers).
_LOST_CONNECTION: Outgoing = Outgoing(0, [], b"")
# The host name of `named_host`: it needs a lookup, as discord.com does.
LOOPBACK_NAME = "localhost"
IPV6_LOOPBACK = "::1"


@dataclass
class _Webhook:
    id: str
    token: str
    channel_id: str
    name: str
    guild_id: str | None = None


def _flag(query: dict[str, list[str]], name: str) -> bool:
    return query.get(name, ["false"])[-1].strip().lower() in ("true", "1")


class FakeDiscord:
    """A real HTTP server on 127.0.0.1 (free port) behaving like Discord's Execute Webhook;
    also reachable as ``localhost`` (and on ::1 when ``localhost`` resolves there).

    It routes, validates and rate limits like Discord (per-webhook bucket announced in headers,
    hidden per-channel limit, global limit), records what it accepted, and can inject faults.
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
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._server: Server | None = None
        self._server_v6: Server | None = None
        self._stopping = False
        self._last_snowflake = 0
        self._webhooks: dict[str, _Webhook] = {}
        self._messages: list[ReceivedMessage] = []
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
        self._overrides: dict[str, int] = {}
        self._latency = 0.0
        self._hang = False
        self._ban: float | None = None
        self._buffer = 0

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> FakeDiscord:
        """Bind a free port on 127.0.0.1 and serve on a daemon thread; returns self."""
        with self._lock:
            if self._stopping:
                raise RuntimeError("a stopped FakeDiscord cannot be restarted; create a new one")
            if self._server is not None:
                return self
            self._server = Server(self._handle)
            self._server_v6 = self._ipv6_listener(self._server.server_port)
        self._server.start()
        if self._server_v6 is not None:
            self._server_v6.start()
        return self

    def _ipv6_listener(self, port: int) -> Server | None:
        """A second listener on ::1 (same port) when ``localhost`` resolves there too, so a
        client trying ::1 first is answered; never any address beyond loopback."""
        try:
            infos = socket.getaddrinfo(LOOPBACK_NAME, port, socket.AF_INET6, socket.SOCK_STREAM)
        except OSError:
            return None
        if not any(info[4][0] == IPV6_LOOPBACK for info in infos):
            return None
        with contextlib.suppress(OSError):  # port taken on ::1: clients fall back to IPv4
            return Server(self._handle, host=IPV6_LOOPBACK, port=port)
        return None

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
    ) -> str:
        """Register a webhook and return its URL ``{base_url}/api/v10/webhooks/{id}/{token}``.

        Ids default to fresh snowflakes, tokens to 68 URL-safe characters like Discord's.
        Each webhook gets its own channel unless ``channel_id`` (or its older name ``channel``)
        is given: webhooks in one channel share its hidden per-channel limit, and ``GET`` on
        the URL returns that ``channel_id`` and the ``guild_id`` (one guild per fake unless
        given). Re-adding an id replaces it. ``host="localhost"`` gives
        ``http://localhost:<port>/...``, reached through a name lookup (allow it with
        ``named_host``); ``host="::1"`` gives ``http://[::1]:<port>/...`` (``ipv6_host``).
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
            self._webhooks[wid] = _Webhook(wid, tok, chan, name, guild)
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

    # -- records -----------------------------------------------------------------------------

    @property
    def messages(self) -> list[ReceivedMessage]:
        """A copy of the accepted messages, in order of acceptance."""
        with self._lock:
            return list(self._messages)

    @property
    def requests(self) -> list[RequestRecord]:
        """A copy of the records of every answered request, in order."""
        with self._lock:
            return list(self._requests)

    @property
    def pending(self) -> int:
        """Requests received but not yet answered because of ``set_hang`` or ``set_latency``."""
        with self._lock:
            return self._buffer

    def messages_for(self, webhook_id: str | int) -> list[ReceivedMessage]:
        """Accepted messages of one webhook, in order."""
        wid = str(webhook_id)
        return [m for m in self.messages if m.webhook_id == wid]

    def count_status(self, status: int, webhook_id: str | int | None = None) -> int:
        """How many answers had ``status`` (for one webhook, or all requests)."""
        wid = None if webhook_id is None else str(webhook_id)
        return sum(
            1 for r in self.requests if r.status == status and (wid is None or r.webhook_id == wid)
        )

    def channel_of(self, webhook_id: str | int) -> str:
        """The channel a registered webhook posts into (without ``thread_id``)."""
        with self._lock:
            return self._webhooks[str(webhook_id)].channel_id

    def messages_in(self, channel_id: str | int) -> list[ReceivedMessage]:
        """Accepted messages posted in one channel (or thread), by any webhook, in order."""
        cid = str(channel_id)
        return [m for m in self.messages if m.channel_id == cid]

    def peak_per_channel(self, window: float | None = None) -> dict[str, int]:
        """Channel -> most messages accepted in any ``window`` seconds (default: the hidden
        limit's window), the figure Discord's hidden limit is about."""
        span = self.channel_window if window is None else window
        times: dict[str, list[float]] = {}
        for message in self.messages:
            times.setdefault(message.channel_id or "", []).append(message.received_at)
        peaks = {}
        for channel, stamps in times.items():
            stamps.sort()
            first, peak = 0, 0
            for last, stamp in enumerate(stamps):
                while stamps[first] <= stamp - span:
                    first += 1
                peak = max(peak, last - first + 1)
            peaks[channel] = peak
        return peaks

    def rate_limited_by_scope(self) -> Counter[str]:
        """429s answered, by scope: ``shared`` (the hidden channel limit), ``user`` (the
        webhook's bucket, and forced ones), ``global``, ``cloudflare`` (the ban page)."""
        return Counter(
            r.scope or ("cloudflare" if not r.had_via else "unknown")
            for r in self.requests
            if r.status == 429
        )

    def reset(self) -> None:
        """Clear messages, requests, every fault and all rate-limit windows; keep the webhooks."""
        with self._cond:
            self._messages.clear()
            self._requests.clear()
            self._buckets.clear()
            self._channels.clear()
            self._global.clear()
            self._fail.clear()
            self._lost.clear()
            self._forced_429.clear()
            self._forced_global_429.clear()
            self._overrides.clear()
            self._latency = 0.0
            self._hang = False
            self._ban = None
            self._cond.notify_all()

    # -- faults ------------------------------------------------------------------------------

    def fail_next(self, n: int, status: int = 503, webhook_id: str | int | None = None) -> None:
        """Answer the next ``n`` execute requests (of one webhook or any) with ``status``.

        Injected answers carry ``Via`` (they come from Discord, not Cloudflare) and do not use
        up any rate limit.
        """
        self._add_fault(self._fail, Fault(n, self._wid(webhook_id), status=status))

    def lose_answers(
        self, n: int, status: int | None = 504, webhook_id: str | int | None = None
    ) -> None:
        """The next ``n`` execute requests create their message, then the answer is lost: a
        gateway's ``status`` (502, 504, 524) comes back instead of Discord's, or, with
        ``status=None``, the connection closes with no answer at all."""
        self._add_fault(self._lost, Fault(n, self._wid(webhook_id), status=status or 0))

    def force_429(
        self, n: int, retry_after: float = 0.1, webhook_id: str | int | None = None
    ) -> None:
        """Answer the next ``n`` execute requests with a per-route 429 (scope ``user``)."""
        self._add_fault(self._forced_429, Fault(n, self._wid(webhook_id), retry_after=retry_after))

    def force_global_429(self, n: int, retry_after: float = 0.1) -> None:
        """Answer the next ``n`` execute requests with a global 429 (``global: true``)."""
        self._add_fault(self._forced_global_429, Fault(n, None, retry_after=retry_after))

    def set_latency(self, seconds: float) -> None:
        """Delay every answer by ``seconds`` of real time (0 turns it off)."""
        with self._lock:
            self._latency = max(0.0, seconds)

    def set_hang(self, on: bool) -> None:
        """While on, requests wait unanswered; off answers them; ``stop()`` drops them."""
        with self._cond:
            self._hang = on
            self._cond.notify_all()

    def set_ban(self, on: bool, *, retry_after: int = 60) -> None:
        """Simulate a Cloudflare IP ban: every request gets 429 WITHOUT ``Via``, HTML body."""
        with self._lock:
            self._ban = float(retry_after) if on else None

    def set_status_override(self, webhook_id: str | int, status: int | None) -> None:
        """Answer every execute request of a webhook with ``status`` (e.g. 403); None clears."""
        with self._lock:
            if status is None:
                self._overrides.pop(str(webhook_id), None)
            else:
                self._overrides[str(webhook_id)] = status

    def _add_fault(self, faults: list[Fault], fault: Fault) -> None:
        if fault.remaining > 0:
            with self._lock:
                faults.append(fault)

    @staticmethod
    def _wid(webhook_id: str | int | None) -> str | None:
        return None if webhook_id is None else str(webhook_id)

    # -- request handling (server threads) ---------------------------------------------------

    def _snowflake(self) -> str:
        """A new snowflake-like id (19 digits today), strictly increasing. Call under the lock."""
        millis = int(time.time() * 1000) - _DISCORD_EPOCH_MS
        self._last_snowflake = max(millis << 22, self._last_snowflake + 1)
        return str(self._last_snowflake)

    def _wait_for_faults(self) -> bool:
        """Apply hang and latency; False when ``stop()`` released the request instead."""
        with self._cond:
            self._buffer += 1
            try:
                while self._hang and not self._stopping:
                    self._cond.wait()
                deadline = time.monotonic() + self._latency
                while not self._stopping and (left := deadline - time.monotonic()) > 0:
                    self._cond.wait(left)
                return not self._stopping
            finally:
                self._buffer -= 1

    def _handle(self, request: Incoming) -> Outgoing | None:
        if not self._wait_for_faults():
            return None
        split = urlsplit(request.target)
        match = _ROUTE.match(split.path)
        # Parse and validate outside the lock: bodies can be up to 25 MiB.
        parsed: Accepted | Rejection | None = None
        if match is not None and request.method == "POST":
            content_type = request.headers.get("Content-Type", "")
            parsed = TOO_LARGE if request.too_large else parse_body(content_type, request.body)
        with self._lock:
            answer = self._decide(request, split.path, match, parse_qs(split.query), parsed)
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
        if fault := take(self._forced_global_429, wid):
            return self._record(ctx, resp.rate_limited(ctx, fault.retry_after, is_global=True))
        if fault := take(self._fail, wid):
            return self._record(ctx, resp.error(ctx, fault.status))
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
        # The hidden per-channel limit: only messages that would be created count, and the
        # headers do not announce it, so this 429 can come while X-RateLimit-Remaining > 0.
        # A thread is a channel of its own. Checked and counted under the lock, so requests
        # arriving together can never both take the last place.
        thread_id = query.get("thread_id", [None])[-1]
        channel_id = thread_id or hook.channel_id
        channel = self._channels.setdefault(
            channel_id, SlidingLog(self.channel_limit, self.channel_window)
        )
        if (wait := channel.try_acquire(now)) > 0:
            return self._record(ctx, resp.rate_limited(ctx, wait, scope="shared"))
        message = ReceivedMessage(
            webhook_id=wid,
            message_id=self._snowflake(),
            payload=parsed.payload,
            files=parsed.files,
            thread_id=thread_id,
            received_at=now,
            channel_id=channel_id,
        )
        self._messages.append(message)
        if fault := take(self._lost, wid):  # created, but the answer never arrives whole
            if not fault.status:
                self._record(ctx, resp.error(ctx, 502))  # logged; the client sees a dropped line
                return _LOST_CONNECTION
            return self._record(ctx, resp.error(ctx, fault.status))
        if not _flag(query, "wait"):
            return self._record(ctx, resp.json_response(ctx, 204, None))
        attachment_ids = [self._snowflake() for _ in parsed.files]
        body = resp.message_object(message, thread_id or hook.channel_id, hook.name, attachment_ids)
        return self._record(ctx, resp.json_response(ctx, 200, body))

    def _get_webhook(self, ctx: resp.Context, hook: _Webhook | None, token: str) -> Outgoing:
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
