"""One process of the Redis multi-process test: takes slots through Redis, prints them.

Run as ``python redis_worker.py <url> <slots> <limit> <window>``; prints ``<taken> <answered>``
per slot: the stamps the ledger wrote on Redis's clock, read back from Redis.
"""

from __future__ import annotations

import asyncio
import json
import sys

from discord_logging.coordination import Grant
from discord_logging.coordination.ledger import Limits
from discord_logging.coordination.redis import RedisCoordinator


async def main(url: str, slots: int, limit: int, window: float) -> None:
    limits = Limits(channel_limit=limit, channel_window=window, global_limit=1000)
    coordinator = RedisCoordinator(url, limits)
    client = coordinator._client
    key = f"{coordinator.prefix}:window:channel:shared"

    async def stamp(slot: str) -> float:
        """The stamp the ledger wrote for ``slot``, read back from Redis."""
        value: float = json.loads(await client.get(key))["s"][slot]
        return value

    lines = []
    while len(lines) < slots:
        got = await coordinator.acquire("channel:shared", "webhook-shared")
        if not isinstance(got, Grant):
            await asyncio.sleep(min(got, 0.05))
            continue
        taken = await stamp(got.slot)
        await coordinator.complete(got, None)
        lines.append(f"{taken!r} {await stamp(got.slot)!r}")
    assert coordinator.stats.backend_errors == 0
    await coordinator.aclose()
    print("\n".join(lines))


if __name__ == "__main__":
    url, count, limit, window = sys.argv[1:5]
    asyncio.run(main(url, int(count), int(limit), float(window)))
