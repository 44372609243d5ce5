"""One process of the multi-process tests: takes slots from a shared backend, prints them.

Run as ``python slot_worker.py host|redis <store dir|url> <slots> <limit> <window>``; prints
one line per slot, ``<taken> <answered>``: the stamps the ledger wrote, on the backend's clock
(the caller's wall clock for the one-host store, Redis's ``TIME`` for Redis, read back).
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis

from discord_logging.coordination import Grant
from discord_logging.coordination.host import HostCoordinator
from discord_logging.coordination.ledger import Limits
from discord_logging.coordination.redis import RedisCoordinator
from discord_logging.coordination.shared_coordinator import SharedCoordinator

CHANNEL = "channel:shared"


class Recording:
    """``time.time``, remembering the last reading (the stamp the ledger just wrote)."""

    last = 0.0

    def __call__(self) -> float:
        self.last = time.time()
        return self.last


async def main(backend: str, where: str, slots: int, limit: int, window: float) -> None:
    limits = Limits(channel_limit=limit, channel_window=window, global_limit=1000)
    clock = Recording()
    coordinator: SharedCoordinator
    reader: Any = None
    if backend == "host":
        coordinator = HostCoordinator(Path(where), limits, clock=clock)

        async def stamp(slot: str) -> float:
            return clock.last

    else:
        redis = coordinator = RedisCoordinator(where, limits)
        reader = aioredis.Redis.from_url(where)  # reads the window back as any client would

        async def stamp(slot: str) -> float:
            text = await reader.get(f"{redis.prefix}:window:{CHANNEL}")
            value: float = json.loads(text)["s"][slot]
            return value

    lines = []
    while len(lines) < slots:
        got = await coordinator.acquire(CHANNEL, "webhook-shared")
        if not isinstance(got, Grant):
            await asyncio.sleep(min(got, 0.05))
            continue
        taken = await stamp(got.slot)
        await coordinator.complete(got, None)
        lines.append(f"{taken!r} {await stamp(got.slot)!r}")
    assert coordinator.stats.backend_errors == 0
    await coordinator.aclose()
    if reader is not None:
        await reader.aclose()
    print("\n".join(lines))


if __name__ == "__main__":
    backend, where, count, limit, window = sys.argv[1:6]
    asyncio.run(main(backend, where, int(count), int(limit), float(window)))
