"""Cost of one slot on the worker thread, per coordination backend.

Each backend hands out slots from states as full as Discord's limits make them (30 stamps in
the channel's window, 49 in the global one): every timed ``acquire`` is granted and then given
back (``give_back`` has the shape of ``complete``: one transaction on the same four keys).
Prints microseconds per call (median and 95th percentile) for one process alone and for 4
processes at once on the same store or Redis (each process measures itself, in a tight loop:
far more contention than a fleet limited to 50 requests/s), and the backend errors (calls
served by the local fallback share instead).

    uv run python benchmarks/coordination.py [--calls 2000] [--redis-url URL]

Without ``--redis-url`` a ``redis-server`` is started on a free loopback port when the machine
has one (nothing saved, stopped at the end); otherwise the Redis rows are skipped.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from discord_logging.coordination import Coordinator, Grant
from discord_logging.coordination.host import HostCoordinator
from discord_logging.coordination.ledger import Limits
from discord_logging.coordination.local import LocalCoordinator

# Windows of an hour: nothing expires while we measure, so the states keep their size.
LIMITS = Limits(channel_limit=31, channel_window=3600.0, global_limit=10_000, global_window=3600)


def make(backend: str, where: str) -> Coordinator:
    if backend == "local":
        return LocalCoordinator(LIMITS)
    if backend == "host":
        return HostCoordinator(Path(where), LIMITS)
    from discord_logging.coordination.redis import RedisCoordinator

    return RedisCoordinator(where, LIMITS)


Result = tuple[list[float], list[float], int]


async def measure(backend: str, where: str, calls: int, name: str) -> Result:
    coordinator = make(backend, where)
    channel, webhook = f"channel:{name}", f"webhook-{name}"
    for n in range(30):  # fill the channel window as Discord's limit would
        got = await coordinator.acquire(channel, f"{webhook}-{n}")
        assert isinstance(got, Grant), got
    acquires, answers = [], []
    for _ in range(calls):
        started = time.perf_counter()
        got = await coordinator.acquire(channel, webhook)
        middle = time.perf_counter()
        assert isinstance(got, Grant), got
        await coordinator.give_back(got)
        acquires.append(middle - started)
        answers.append(time.perf_counter() - middle)
    errors = coordinator.stats.backend_errors
    await coordinator.aclose()
    return acquires, answers, errors


def one_process(args: tuple[str, str, int, str]) -> Result:
    return asyncio.run(measure(*args))


def figures(samples: list[float]) -> str:
    micros = sorted(s * 1e6 for s in samples)
    p95 = micros[int(len(micros) * 0.95)]
    return f"{statistics.median(micros):8.1f} {p95:8.1f}"


def row(label: str, backend: str, where: str, calls: int, processes: int) -> None:
    jobs = [(backend, where, calls, f"{processes}-{n}") for n in range(processes)]
    if processes == 1:
        results = [one_process(jobs[0])]
    else:
        with multiprocessing.get_context("spawn").Pool(processes) as pool:
            results = pool.map(one_process, jobs)
    acquires = [s for a, _, _ in results for s in a]
    answers = [s for _, b, _ in results for s in b]
    errors = sum(e for _, _, e in results)
    print(f"{label:<34} {processes:>3}   {figures(acquires)}   {figures(answers)}   {errors:>6}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000, help="timed slots per process")
    parser.add_argument("--redis-url", help="an existing Redis (default: start one)")
    args = parser.parse_args()
    server = None
    url = args.redis_url
    if url is None and (binary := shutil.which("redis-server")):
        port = free_port()
        server = subprocess.Popen(
            [
                binary,
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
        )
        time.sleep(0.3)
        url = f"redis://127.0.0.1:{port}/0"
    head = f"{'backend':<34} {'procs':>5}"
    print(f"{head} {'acquire µs: median  p95':>24}  {'answer µs: median  p95':>22}  errors")
    try:
        row("local (in-process, no I/O)", "local", "", args.calls, 1)
        with tempfile.TemporaryDirectory() as store:
            row("host (SQLite, one store dir)", "host", store, args.calls, 1)
            row("host (SQLite, one store dir)", "host", store, args.calls, 4)
        if url is not None:
            row("redis (loopback, compare-and-set)", "redis", url, args.calls, 1)
            row("redis (loopback, compare-and-set)", "redis", url, args.calls, 4)
        else:
            print("redis: skipped (no redis-server on this machine and no --redis-url)")
    finally:
        if server is not None:
            server.terminate()
            server.wait()


if __name__ == "__main__":
    main()
