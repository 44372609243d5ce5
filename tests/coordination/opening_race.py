"""Processes opening one new limits store at the same moment, round after round.

Run as ``python opening_race.py <directory> <rounds> <processes>``; each round makes a new
store under ``<directory>``, forks ``<processes>`` children that wait at one barrier and then
take a slot each, and counts the children that fell back to the local share. Prints the JSON
``{"fallbacks": n, "errors": [...]}``. Forked from this small script, not from pytest (its
threads would make the fork unsafe).
"""

from __future__ import annotations

import asyncio
import io
import json
import multiprocessing
import os
import sys
from pathlib import Path

from discord_logging.coordination import Grant
from discord_logging.coordination.host import HostCoordinator
from discord_logging.coordination.ledger import Limits

LIMITS = Limits(channel_limit=1000, channel_window=60.0, global_limit=1000)


async def take_slot(store: Path) -> tuple[int, str]:
    stderr = io.StringIO()
    coordinator = HostCoordinator(store, LIMITS, stderr=stderr)
    got = await coordinator.acquire("channel:race", "webhook:race")
    if isinstance(got, Grant):  # a wait instead: only the local share says so
        await coordinator.complete(got, None)
    await coordinator.aclose()
    return coordinator.stats.fallbacks, stderr.getvalue().strip()


def child(store: Path, barrier: multiprocessing.synchronize.Barrier, pipe: int) -> None:
    barrier.wait()
    fallbacks, said = asyncio.run(take_slot(store))
    os.write(pipe, (json.dumps([fallbacks, said]) + "\n").encode())


def main(directory: Path, rounds: int, processes: int) -> None:
    context = multiprocessing.get_context("fork")
    fallbacks, errors = 0, []
    for number in range(rounds):
        store = directory / f"store-{number}"
        barrier = context.Barrier(processes)
        read, write = os.pipe()
        children = [
            context.Process(target=child, args=(store, barrier, write)) for _ in range(processes)
        ]
        for process in children:
            process.start()
        os.close(write)
        with os.fdopen(read) as lines:
            answers = [json.loads(line) for line in lines]
        for process in children:
            process.join()
            assert process.exitcode == 0, process.exitcode
        assert len(answers) == processes
        for count, said in answers:
            fallbacks += count
            if said:
                errors.append(said)
    print(json.dumps({"fallbacks": fallbacks, "errors": errors[:3]}))


if __name__ == "__main__":
    main(Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]))
