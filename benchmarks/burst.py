"""A flood of 100,000 records: memory, time in ``logger.error``, where every record went.

Each run is a fresh process (FakeDiscord runs in this one, so its threads do not share the
measured process's GIL). Runs:

- ``down``: 100,000 distinct records while Discord answers 503 (docs/architecture.md, "Memory
  in a flood": at most ``DISCORD_MEMORY_MAX_RECORDS`` records in memory, the rest counted);
- ``unreachable``: the same with nothing listening at the webhook's address;
- ``healthy``: half identical, half distinct, Discord up, then ``flush(20)`` (the old burst);
- ``stdlib``: the down flood through the stdlib ``QueueHandler`` + ``QueueListener`` pair, the
  listener posting each record with urllib (what a hand-rolled handler does), given the same
  20 s to drain its queue.

For each: peak RSS growth over the flood and its drain (``ru_maxrss`` against the RSS before
it), the slowest ``logger.error`` call, its 99.9th and 99th percentiles, the calls over 20 ms,
the full garbage collections (on any thread) and how much of the slowest call one took (the
rest is the GIL and the machine's scheduler), and the accounting:
accepted = delivered + aggregated + kept (+ lost, which must be 0), beside dropped by reason.

    uv run python benchmarks/burst.py [--records 100000] [--runs down,unreachable,healthy,stdlib]
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
import tempfile
from typing import Any

from _child import clean_env, run_child

from discord_logging.testing import FakeDiscord

CHILD = r"""
import gc, json, logging, logging.handlers, os, queue, resource, sys, time, urllib.request

mode, records, drain = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
urls = json.loads(os.environ["BURST_URLS"])


def rss():
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * 4096


class Post(logging.Handler):
    # What a hand-rolled handler behind a QueueListener does: one POST per record, no retry.
    posted = failed = 0

    def emit(self, record):
        body = json.dumps({"content": self.format(record)[:2000]}).encode()
        request = urllib.request.Request(
            urls["error"], body, {"Content-Type": "application/json"}
        )
        try:
            urllib.request.urlopen(request, timeout=5).close()
            Post.posted += 1
        except Exception:
            Post.failed += 1


logger = logging.getLogger("burst")
logger.propagate = False
if mode == "stdlib":
    handler = Post()
    handoff = queue.Queue(-1)
    listener = logging.handlers.QueueListener(handoff, handler)
    listener.start()
    logger.addHandler(logging.handlers.QueueHandler(handoff))
else:
    from discord_logging import DiscordHandler

    handler = DiscordHandler(
        webhooks=urls, allowed_hosts=os.environ["BURST_HOSTS"],
        store_path=os.environ["BURST_STORE"], close_timeout=5.0,
    )
    handler.wait_started(60)
    logger.addHandler(handler)
logger.error("warm-up")
if mode == "stdlib":
    time.sleep(0.5)
else:
    handler.flush(10)
gc.collect()
full = []  # (start, end) of each full collection, on any thread


def collected(phase, info, began=[0.0]):
    if info["generation"] == 2:
        if phase == "start":
            began[0] = time.perf_counter()
        else:
            full.append((began[0], time.perf_counter()))


gc.callbacks.append(collected)
baseline = rss()
calls, slowest = [], (0.0, 0.0)
started = time.perf_counter()
for i in range(records):
    before = time.perf_counter()
    if mode == "healthy" and i % 2:
        logger.error("upstream timeout talking to %s", "payments")
    else:
        logger.error(f"order {i} failed validation")  # a distinct record
    after = time.perf_counter()
    calls.append(after - before)
    if after - before > slowest[1] - slowest[0]:
        slowest = (before, after)
in_emit = time.perf_counter() - started
out = {
    "over_20ms": sum(1 for c in calls if c > 0.020),
    "full_collections": [end - begin for begin, end in full],
    "slowest_in_collection": max(
        [0.0, *(min(end, slowest[1]) - max(begin, slowest[0]) for begin, end in full)]
    ),
}
if mode == "stdlib":
    # The listener posts one request per record; the drain gets the same 20 s as "healthy".
    deadline = time.monotonic() + drain
    while handoff.qsize() and time.monotonic() < deadline:
        time.sleep(0.05)
    out.update(
        accepted=records + 1, delivered=Post.posted, failed=Post.failed, queued=handoff.qsize()
    )
else:
    if mode == "healthy":
        handler.flush(drain)
    closing = time.perf_counter()
    handler.close()
    out["close_s"] = time.perf_counter() - closing
    stats = handler.stats()
    out.update(
        accepted=stats["emitted"], delivered=stats["delivered"], aggregated=stats["aggregated"],
        dead_lettered=stats["dead_lettered"], kept=stats["dead_letters_kept"],
        dropped=stats["dropped"], queue_depth=stats["queue_depth"],
        limit=handler.settings.memory_max_records,
    )
calls.sort()
out.update(
    rss_growth=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - baseline,
    in_emit=in_emit, worst=calls[-1], p999=calls[int(len(calls) * 0.999)],
    p99=calls[int(len(calls) * 0.99)],
)
print(json.dumps(out), flush=True)
os._exit(0)  # the stdlib listener's queue is not waited for at exit (nor is ours: it is closed)
"""

TITLES = {
    "down": "Discord down (503), distinct records",
    "unreachable": "Discord unreachable (nothing listens), distinct records",
    "healthy": "Discord up, half identical and half distinct, flush(20)",
    "stdlib": "stdlib QueueHandler + QueueListener (urllib POST each), Discord down (503)",
}


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then closed)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def run(mode: str, records: int, drain: float) -> dict[str, Any]:
    with FakeDiscord() as fake:
        urls = {"general": fake.add_webhook(), "error": fake.add_webhook()}
        hosts = fake.host
        if mode in ("down", "stdlib"):
            fake.fail_next(10 * records, 503)
        elif mode == "unreachable":
            port = closed_port()
            urls = {k: v.replace(fake.host, f"127.0.0.1:{port}") for k, v in urls.items()}
            hosts = f"127.0.0.1:{port}"
        env = clean_env(
            BURST_URLS=json.dumps(urls),
            BURST_HOSTS=hosts,
            BURST_STORE=tempfile.mkdtemp(prefix="burst-store-"),
        )
        out, done = run_child([sys.executable, "-c", CHILD, mode, str(records), str(drain)], env)
        out["stderr_lines"] = [x for x in done.stderr.splitlines() if x.strip()]
        out["429s"] = fake.count_status(429)
        return out


def report(mode: str, records: int, out: dict[str, Any]) -> None:
    print(f"{TITLES[mode]} ({records:,} records):")
    print(
        f"  logger.error: {out['in_emit'] / records * 1e6:.1f} us per call; slowest "
        f"{out['worst'] * 1e3:.1f} ms, 99.9th percentile {out['p999'] * 1e3:.2f} ms, 99th "
        f"{out['p99'] * 1e3:.3f} ms"
    )
    collections = out["full_collections"]
    print(
        f"  calls over 20 ms: {out['over_20ms']}; full garbage collections in the run: "
        f"{len(collections)}, longest {max(collections or [0.0]) * 1e3:.1f} ms; the slowest "
        f"call spent {out['slowest_in_collection'] * 1e3:.1f} ms of it in one"
    )
    print(f"  peak RSS growth: {out['rss_growth'] / 2**20:.1f} MB")
    if mode == "stdlib":
        lost = out["accepted"] - out["delivered"]
        print(
            f"  accepted {out['accepted']:,}: posted {out['delivered']:,}, failed and gone "
            f"{out['failed']:,}, still queued after the drain {out['queued']:,}; lost {lost:,} "
            f"(none counted, none kept)"
        )
        return
    accepted, dropped = out["accepted"], out["dropped"]
    settled = out["delivered"] + out["aggregated"] + out["dead_lettered"]
    print(
        f"  accepted {accepted:,} (memory bound {out['limit']:,} records): delivered "
        f"{out['delivered']:,}, aggregated {out['aggregated']:,}, kept {out['kept']:,} "
        f"(dead-lettered {out['dead_lettered']:,}); dropped {dropped or 'none'}"
    )
    print(
        f"  accounted: accepted + dropped = {accepted + sum(dropped.values()):,} of "
        f"{records + 1:,} (with the warm-up); lost {accepted - settled + out['queue_depth']:,}; "
        f"close {out['close_s']:.2f} s; 429s {out['429s']}"
    )
    for line in out["stderr_lines"]:
        print(f"  stderr: {line[:160]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--drain-seconds", type=float, default=20.0)
    parser.add_argument("--runs", default="down,unreachable,healthy,stdlib")
    args = parser.parse_args()
    for mode in args.runs.split(","):
        report(mode, args.records, run(mode, args.records, args.drain_seconds))


if __name__ == "__main__":
    main()
