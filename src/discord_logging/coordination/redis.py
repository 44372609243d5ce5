"""Limits, pauses and dead-letter claims shared by every process of every host, on Redis.

Chosen by ``DISCORD_REDIS_URL`` (keyword ``redis_url``); needs ``discord-logging[redis]``
(redis-py's asyncio client), imported only here.

Atomicity: ``WATCH`` the keys a request touches, read them with the server's ``TIME``, apply the
same pure :mod:`.ledger` change as every other backend, write in ``MULTI``/``EXEC``; a
concurrent writer makes ``EXEC`` fail and the change is made again on fresh values. One copy of
the arithmetic (tested by properties) instead of a second one in Lua; the cost is a few more
round trips per slot, at most 50 a second per process (see benchmarks/coordination.py).

Clock: Redis ``TIME``, one clock for every host, so skew between hosts cannot widen a window.

When Redis is unreachable each process keeps to a conservative share of the limits
(``limit // fleet_size``, ``DISCORD_FLEET_SIZE``), counts it, says so once on stderr and tries
Redis again every ``retry_interval`` seconds. Nothing is lost: a slot is then granted from the
local share; a claim is refused (the letter stays stored, redelivered once Redis is back).
"""

from __future__ import annotations

import contextlib
import json
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any, Final, TextIO, TypeVar
from urllib.parse import urlsplit

import redis.asyncio as aioredis
from redis.exceptions import RedisError, WatchError

from ..ratelimit import RateLimitHeaders
from . import Coordinator, Grant, ledger
from .ledger import Limits, State
from .local import LocalCoordinator

T = TypeVar("T")

PREFIX: Final = "discord-logging"
RETRY_INTERVAL: Final = 5.0
KEY_TTL_MS: Final = int((ledger.MAX_HOLD + 60) * 1000)  # idle keys leave by themselves
_CONFLICT_ATTEMPTS: Final = 20
_TIMEOUT: Final = 1.0
# Errors that mean "Redis cannot answer now": connection refused or dropped, timeouts.
UNREACHABLE: Final = (RedisError, OSError, TimeoutError)

_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


class ContendedKeys(RedisError):
    """Other writers kept changing the keys of one slot; treated like an unreachable Redis."""


def redacted_url(url: str) -> str:
    """``redis://host:port/db`` without the user name and password."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"


class RedisCoordinator(Coordinator):
    """Slots taken in Redis transactions, with a local share while Redis is away."""

    backend = "redis"

    def __init__(
        self,
        url: str,
        limits: Limits,
        *,
        fleet_size: int = 4,
        prefix: str = PREFIX,
        retry_interval: float = RETRY_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
        stderr: TextIO | None = None,
    ) -> None:
        super().__init__(limits, clock)
        self.url = redacted_url(url)
        self.fleet_size = max(1, fleet_size)
        self.prefix = prefix
        self.retry_interval = retry_interval
        self.fallback = LocalCoordinator(limits.share(self.fleet_size), clock=clock)
        self._stderr = stderr
        self._told = False
        self._down_until: float | None = None
        self._client: Any = aioredis.Redis.from_url(
            url, socket_timeout=_TIMEOUT, socket_connect_timeout=_TIMEOUT, retry_on_timeout=False
        )

    # -- reachability ------------------------------------------------------------------------

    @property
    def reachable(self) -> bool:
        """False while this process keeps to its local share."""
        return self._down_until is None

    def _redis_due(self) -> bool:
        return self._down_until is None or self.clock() >= self._down_until

    def _up(self) -> None:
        self._down_until = None

    def _down(self, error: BaseException) -> None:
        self.stats.backend_errors += 1
        if self._down_until is None:
            self.stats.fallbacks += 1
        self._down_until = self.clock() + self.retry_interval
        if not self._told:
            self._told = True
            share = self.fallback.limits
            print(
                f"discord_logging: Redis at {self.url} is unreachable ({type(error).__name__}); "
                f"this process keeps to {share.channel_limit} messages per "
                f"{share.channel_window:g} s per channel (DISCORD_RATE_LIMIT // "
                f"DISCORD_FLEET_SIZE={self.fleet_size}) until it answers again. Said once.",
                file=self._stderr or sys.stderr,
            )

    # -- the transaction ---------------------------------------------------------------------

    async def _transact(
        self, keys: tuple[str, ...], change: Callable[[list[State], float], T]
    ) -> T:
        names = [f"{self.prefix}:{key}" for key in keys]
        async with self._client.pipeline(transaction=True) as pipe:
            for _ in range(_CONFLICT_ATTEMPTS):
                try:
                    await pipe.watch(*names)
                    raw = await pipe.mget(names)
                    seconds, micros = await pipe.time()
                    states = [
                        ledger.from_json(key, json.loads(value) if value else None)
                        for key, value in zip(keys, raw, strict=True)
                    ]
                    result = change(states, seconds + micros / 1_000_000)
                    pipe.multi()
                    for name, state in zip(names, states, strict=True):
                        text = json.dumps(state.to_json(), separators=(",", ":"))
                        pipe.set(name, text, px=KEY_TTL_MS)
                    await pipe.execute()
                    return result
                except WatchError:
                    continue
        raise ContendedKeys(f"{len(keys)} keys kept changing")

    # -- limits, with the local share as fallback --------------------------------------------

    async def acquire(self, channel: str, webhook: str) -> Grant | float:
        if self._redis_due():
            try:
                got = await super().acquire(channel, webhook)
            except UNREACHABLE as error:
                self._down(error)
            else:
                self._up()
                return got
        got = await self.fallback.acquire(channel, webhook)
        if isinstance(got, Grant):
            self.stats.fallback_grants += 1
            return replace(got, local=True)
        return got

    async def complete(self, grant: Grant, headers: RateLimitHeaders | None) -> None:
        if grant.local:
            await self.fallback.complete(grant, headers)
        else:
            # If Redis is gone meanwhile, its stamp stays at send time and expires by itself.
            await self._shared(super().complete(grant, headers))

    async def give_back(self, grant: Grant) -> None:
        if grant.local:
            await self.fallback.give_back(grant)
        else:
            await self._shared(super().give_back(grant))

    async def block_webhook(self, webhook: str, seconds: float) -> None:
        await self.fallback.block_webhook(webhook, seconds)  # the local share obeys it too
        await self._shared(super().block_webhook(webhook, seconds))

    async def pause_all(self, seconds: float) -> None:
        await self.fallback.pause_all(seconds)
        await self._shared(super().pause_all(seconds))

    async def _shared(self, operation: Any) -> Any:
        """Run a Redis operation; when Redis is away, count it and return None."""
        if not self._redis_due():
            operation.close()
            return None
        try:
            result = await operation
        except UNREACHABLE as error:
            self._down(error)
            return None
        self._up()
        return result

    # -- dead-letter claims ------------------------------------------------------------------

    def _claim_key(self, letter_id: str) -> str:
        return f"{self.prefix}:claim:{letter_id}"

    async def claim(self, letter_id: str, holder: str, lease: float) -> bool:
        """``SET NX PX``: one holder at a time. Refused while Redis is away (kept, not lost)."""
        key = self._claim_key(letter_id)
        ms = max(1, int(lease * 1000))

        async def take() -> bool:
            if await self._client.set(key, holder, nx=True, px=ms):
                return True
            # Ours already (a retry after a lost answer): extend it.
            return bool(await self._client.eval(_RENEW, 1, key, holder, ms))

        return bool(await self._shared(take()))

    async def renew(self, letter_id: str, holder: str, lease: float) -> bool:
        ms = max(1, int(lease * 1000))
        return bool(
            await self._shared(self._client.eval(_RENEW, 1, self._claim_key(letter_id), holder, ms))
        )

    async def release(self, letter_id: str, holder: str) -> None:
        await self._shared(self._client.eval(_RELEASE, 1, self._claim_key(letter_id), holder))

    async def aclose(self) -> None:
        with contextlib.suppress(*UNREACHABLE):  # closing a pool whose server is gone
            await self._client.aclose()
