"""One process of the multi-process test: takes slots from the one-host store, prints them.

Run as ``python host_worker.py <store_dir> <slots> <limit> <window>``; prints one line per
slot: ``<taken> <answered>`` on the coordinator's own clock (the times it stamped).
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

from discord_logging.coordination import Grant
from discord_logging.coordination.host import HostCoordinator
from discord_logging.coordination.ledger import Limits


class Recording:
    """``time.time``, remembering the last reading (the stamp the ledger just wrote)."""

    last = 0.0

    def __call__(self) -> float:
        self.last = time.time()
        return self.last


async def main(directory: Path, slots: int, limit: int, window: float) -> None:
    clock = Recording()
    limits = Limits(channel_limit=limit, channel_window=window, global_limit=1000)
    coordinator = HostCoordinator(directory, limits, clock=clock)
    lines = []
    while len(lines) < slots:
        got = await coordinator.acquire("channel:shared", "webhook-shared")
        if not isinstance(got, Grant):
            await asyncio.sleep(min(got, 0.05))
            continue
        taken = clock.last
        await coordinator.complete(got, None)
        lines.append(f"{taken!r} {clock.last!r}")
    coordinator.close()
    print("\n".join(lines))


if __name__ == "__main__":
    store, count, limit, window = sys.argv[1:5]
    asyncio.run(main(Path(store), int(count), int(limit), float(window)))
