"""How fast the worker keeps a flood's records while Discord is down.

A fresh process logs ``--records`` distinct errors in one loop (as many as memory holds,
``DISCORD_MEMORY_MAX_RECORDS``, 10,000 by default) while FakeDiscord (in this process)
answers 503 to everything, then watches its worker turn them into dead letters: the time
until nothing waits in memory, and the records kept a second. While that lasts, new records
are dropped (``memory_full``). Nine in ten are kept as fast as the worker can; the last few
wait in the lane for its retries until its circuit opens. Side by side in one run:

- ``fleet``: a store directory, so the store's coordination is shared and every record of a
  problem takes the fleet's incident step (docs/architecture.md, "One incident per problem
  across the fleet"), the default;
- ``no aggregation``: the same with ``DISCORD_AGGREGATE_WINDOW=0`` (no incidents, no step).

    uv run python benchmarks/outage_drain.py [--records 10000] [--rounds 2]
"""

from __future__ import annotations

import argparse
import sys
import tempfile

from _child import clean_env, run_child

from discord_logging.testing import FakeDiscord

CHILD = r"""
import json, logging, os, sys, time
from discord_logging import DiscordHandler

records = int(sys.argv[1])
handler = DiscordHandler(
    webhooks={"error": os.environ["DRAIN_URL"]}, allowed_hosts=os.environ["DRAIN_HOST"],
    store_path=os.environ["DRAIN_STORE"], close_timeout=5.0,
)
handler.wait_started(60)
log = logging.getLogger("drain")
log.propagate = False
log.addHandler(handler)
began = time.monotonic()
for i in range(records):
    log.error(f"order {i} failed validation")
logged = time.monotonic()
most = None  # nine in ten kept: the rest wait in the lane for its retries or its circuit
while handler.stats()["queue_depth"] and time.monotonic() - began < 120:
    if most is None and handler.stats()["dead_lettered"] >= 0.9 * records:
        most = time.monotonic()
    time.sleep(0.01)
kept = time.monotonic()
most = most or kept
stats = handler.stats()
handler.close()
print(json.dumps({
    "logged_s": logged - began, "most_s": most - began, "kept_s": kept - began,
    "accepted": stats["emitted"],
    "dead_lettered": stats["dead_lettered"], "dropped": stats["dropped"],
    "by_reason": stats["dead_lettered_by_reason"],
}))
"""


def run(records: int, window: str | None) -> dict[str, object]:
    with FakeDiscord() as fake, tempfile.TemporaryDirectory() as store:
        url = fake.add_webhook()
        fake.fail_next(100 * records, 503)
        env = clean_env(DRAIN_URL=url, DRAIN_HOST=fake.host, DRAIN_STORE=store)
        if window is not None:
            env["DISCORD_AGGREGATE_WINDOW"] = window
        out, _ = run_child([sys.executable, "-c", CHILD, str(records)], env, timeout=300)
        return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    print(f"{args.records:,} distinct errors at once, Discord answering 503")
    for label, window in (("fleet (default)", None), ("no aggregation", "0")):
        for _ in range(args.rounds):
            out = run(args.records, window)
            most_s, kept_s = float(out["most_s"]), float(out["kept_s"])  # type: ignore[arg-type]
            print(
                f"  {label:<16} nine in ten kept in {most_s:.2f} s "
                f"({0.9 * args.records / most_s:,.0f} a second), all {out['dead_lettered']:,} "
                f"in {kept_s:.2f} s; dropped {out['dropped'] or 'none'}; {out['by_reason']}"
            )


if __name__ == "__main__":
    main()
