"""Limits and pauses shared by every process of every host, on Redis.

Chosen by ``DISCORD_REDIS_URL`` (keyword ``redis_url``); needs the extra
``discord-alert-logging[redis]`` (redis-py's asyncio client), imported only here.

Atomicity: read the keys a request touches with the server's ``TIME`` (one round trip), apply
the same pure :mod:`.ledger` change as every other backend, and write with a small Lua
compare-and-set that stores the new values only if no other process wrote in between (one
round trip); otherwise the change is made again on fresh values. One copy of the arithmetic,
tested by properties, instead of a second one in Lua. A decision to wait that changed nothing
writes nothing, so processes waiting for a slot do not contend with the one taking it.

Clock: Redis ``TIME``, one clock for every host, so skew between hosts cannot widen a window.

When Redis is unreachable each process keeps to a conservative local share of the limits
(see :mod:`.shared_coordinator`) and tries Redis again every few seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Any, Final, TextIO, TypeVar
from urllib.parse import urlsplit

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from ..delivery.backoff import jitter
from ..wording import counted
from . import ledger
from .ledger import Limits, State
from .shared_coordinator import RETRY_INTERVAL, SharedCoordinator

T = TypeVar("T")

PREFIX: Final = "discord-logging"
KEY_TTL_MS: Final = int((ledger.MAX_HOLD + 60) * 1000)  # idle keys leave by themselves
_CONFLICT_ATTEMPTS: Final = 50
_TIMEOUT: Final = 1.0

# Write the new values only if every key still holds the value read (a compare-and-set over
# several keys): the arithmetic stays in Python, Redis runs the script atomically.
_COMPARE_AND_SET = """
local n = #KEYS
for i = 1, n do
  if (redis.call('GET', KEYS[i]) or '') ~= ARGV[i] then return 0 end
end
for i = 1, n do
  redis.call('SET', KEYS[i], ARGV[n + i], 'PX', ARGV[2 * n + 1])
end
return 1
"""


class ContendedKeys(RedisError):
    """Other writers kept changing the keys of one slot; treated like an unreachable Redis."""


def redacted_url(url: str) -> str:
    """``redis://host:port/db`` without the user name and password."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"


class RedisCoordinator(SharedCoordinator):
    """Slots taken in Redis transactions, with a local share while Redis is away."""

    backend = "redis"
    unreachable = (RedisError, OSError, TimeoutError)

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
        super().__init__(
            limits, clock, fleet_size=fleet_size, retry_interval=retry_interval, stderr=stderr
        )
        self.url = redacted_url(url)
        self.prefix = prefix
        self._client: Any = aioredis.Redis.from_url(
            url, socket_timeout=_TIMEOUT, socket_connect_timeout=_TIMEOUT, retry_on_timeout=False
        )
        self._compare_and_set = self._client.register_script(_COMPARE_AND_SET)

    @property
    def where(self) -> str:
        return f"Redis at {self.url}"

    # -- the transaction ---------------------------------------------------------------------

    async def _transact(
        self, keys: tuple[str, ...], change: Callable[[list[State], float], T]
    ) -> T:
        names = [f"{self.prefix}:{key}" for key in keys]
        for attempt in range(_CONFLICT_ATTEMPTS):
            old, now = await self._load(names)  # one round trip: the states and the clock...
            states = [ledger.decode(key, text) for key, text in zip(keys, old, strict=True)]
            result = change(states, now)
            new = [ledger.encode(state) for state in states]
            if new == old:
                return result  # nothing to write (a wait decided on what was read)
            # ...and one to write them, only if nobody wrote in between.
            if await self._compare_and_set(keys=names, args=[*old, *new, KEY_TTL_MS]):
                return result
            await asyncio.sleep(jitter() * 0.001 * (attempt + 1))
        raise ContendedKeys(f"{counted(len(keys), 'key')} kept changing")

    async def _read(self, keys: tuple[str, ...]) -> tuple[list[State], float]:
        """The states as they are, in the one round trip a transaction starts with; nothing
        is written (a missing key stays missing)."""
        texts, now = await self._load([f"{self.prefix}:{key}" for key in keys])
        return [ledger.decode(key, text) for key, text in zip(keys, texts, strict=True)], now

    async def _load(self, names: list[str]) -> tuple[list[str], float]:
        """The texts under ``names`` ("" when missing) and the server's clock."""
        async with self._client.pipeline(transaction=False) as pipe:
            pipe.mget(names)
            pipe.time()
            raw, (seconds, micros) = await pipe.execute()
        return [value.decode(errors="replace") if value else "" for value in raw], (
            seconds + micros / 1_000_000
        )

    async def aclose(self) -> None:
        with contextlib.suppress(*self.unreachable):  # closing a pool whose server is gone
            await self._client.aclose()
