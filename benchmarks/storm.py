"""A storm of 1,000 identical errors over 2 minutes, against FakeDiscord, three ways side by side:
one message kept current by edits (the default), the second message of earlier versions, and
the fleet: 4 processes sharing one store directory, each logging a quarter of the storm (one
problem, so one message: its count is the fleet's total).

Every time of the scenario is compressed by ``--speed`` (default 12: the 2 minutes take 10 s):
the aggregation window (60 s), the edit interval (10 s) and Discord's windows (5 requests per
2 s announced, 30 messages per 60 s hidden, 50 requests per second global) are all divided by
it, so the figures are those of the real 2 minutes. Prints messages posted, edits, requests
per minute (of scenario time: on average, and the most in any minute), 429s (target 0),
records lost (target 0), and what a reader sees in the channel at the end.

    uv run python benchmarks/storm.py [--repeats 1000] [--minutes 2] [--speed 12] [--json]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from discord_logging import DiscordHandler
from discord_logging.deadletters import MemoryDeadLetters
from discord_logging.testing import FakeDiscord

COUNTED = ("emitted", "delivered", "aggregated", "dead_lettered")
WINDOW = 60.0  # DISCORD_AGGREGATE_WINDOW, scenario seconds
EDIT_INTERVAL = 10.0  # DISCORD_INCIDENT_EDIT_INTERVAL, scenario seconds


def play(
    fake: FakeDiscord, url: str, updates: str, repeats: int, minutes: float, speed: float,
    *, share: tuple[int, int] = (0, 1), store: Path | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Log this process's ``share`` (index, of how many) of the storm through a handler of its
    own, then stay quiet for a window; its stats."""
    handler = DiscordHandler(
        webhooks={"error": url},
        allowed_hosts=fake.host,
        aggregate_window=WINDOW / speed,
        incident_updates=updates,
        incident_edit_interval=EDIT_INTERVAL / speed,
        **({"store_path": str(store)} if store else {"dead_letters": MemoryDeadLetters()}),
        engine_options={"channel_window": 60.0 / speed},
    )
    log = logging.getLogger(f"storm.{updates}")
    log.addHandler(handler)
    log.propagate = False
    started = time.monotonic()
    gap = minutes * 60.0 / speed / repeats
    mine, processes = share
    for i in range(repeats):
        if i % processes == mine:
            log.error("checkout failed: payment gateway timeout", extra={"attempt": i})
        time.sleep(max(0.0, started + (i + 1) * gap - time.monotonic()))
    time.sleep((WINDOW + 2 * EDIT_INTERVAL) / speed)  # quiet for a window, then a margin
    handler.flush(10)
    log.removeHandler(handler)
    handler.close()
    return handler.stats()


def run(updates: str, repeats: int, minutes: float, speed: float, fleet: int = 1) -> dict[str, Any]:
    """Play the storm with ``DISCORD_INCIDENT_UPDATES=updates`` (in ``fleet`` forked processes
    sharing a store directory, when more than one); the figures and the end."""
    with FakeDiscord(
        webhook_window=2.0 / speed, channel_window=60.0 / speed, global_window=1.0 / speed
    ) as fake:
        url = fake.add_webhook()
        started = time.monotonic()
        if fleet == 1:
            stats = [play(fake, url, updates, repeats, minutes, speed)]
        else:
            stats = fork_fleet(fake, url, updates, repeats, minutes, speed, fleet)
        elapsed = time.monotonic() - started
        scenario_minutes = elapsed * speed / 60.0
        shown = []
        for message in fake.messages:  # each embed of each message, as it reads at the end
            now = fake.message(message.message_id)
            for embed in now.embeds if now is not None else []:
                line = str(embed.get("description", "")).split("\n", 1)[0]
                shown.append({"title": embed.get("title"), "line": line, "edits": now.edits})
        total = {key: sum(one[key] for one in stats) for key in COUNTED}
        dropped = sum(sum(one["dropped"].values()) for one in stats)
        accounted = total["delivered"] + total["aggregated"] + total["dead_lettered"]
        return {
            "updates": updates,
            "processes": fleet,
            "emitted": total["emitted"],
            "messages": len(fake.messages),
            "edits": len(fake.edits),
            "requests": len(fake.requests),
            "requests_per_minute": len(fake.requests) / scenario_minutes,
            "peak_requests_per_minute": fake.peak_requests(60.0 / speed),
            "429s": fake.count_status(429),
            "lost": total["emitted"] - accounted + dropped,
            "scenario_minutes": scenario_minutes,
            "reader_sees": shown,
        }


def fork_fleet(
    fake: FakeDiscord, url: str, updates: str, repeats: int, minutes: float, speed: float,
    processes: int,
) -> list[dict[str, Any]]:  # fmt: skip
    """The storm logged by ``processes`` forked processes sharing one store directory, each
    a share of the records in turn; their stats (FakeDiscord answers from this process)."""
    with tempfile.TemporaryDirectory() as directory:
        store = Path(directory) / "store"
        children = []
        for mine in range(processes):
            pid = os.fork()
            if pid == 0:  # the child: its own handler, after the fork
                code = 1
                try:
                    share = (mine, processes)
                    stats = play(
                        fake, url, updates, repeats, minutes, speed, share=share, store=store
                    )
                    Path(directory, f"stats-{mine}.json").write_text(json.dumps(stats))
                    code = 0
                finally:
                    os._exit(code)
            children.append(pid)
        for pid in children:
            os.waitpid(pid, 0)
        return [json.loads(p.read_text()) for p in sorted(Path(directory).glob("stats-*.json"))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=1000)
    parser.add_argument("--minutes", type=float, default=2.0)
    parser.add_argument("--speed", type=float, default=12.0)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    rows = [run(way, args.repeats, args.minutes, args.speed) for way in ("edit", "message")]
    rows.append(run("edit", args.repeats, args.minutes, args.speed, fleet=4))
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    print(
        f"a storm of {args.repeats} identical errors over {args.minutes:g} minutes, one webhook, "
        f"Discord's default limits (time compressed {args.speed:g}x)\n"
    )
    for row in rows:
        name = "one message kept current" if row["updates"] == "edit" else "second message"
        if row["processes"] > 1:
            name = f"{name}, {row['processes']} processes sharing a store directory"
        print(f"[{name}: DISCORD_INCIDENT_UPDATES={row['updates']}]")
        print(
            f"  messages posted {row['messages']}, edits {row['edits']}, requests "
            f"{row['requests']} over {row['scenario_minutes']:.1f} min "
            f"({row['requests_per_minute']:.1f}/min, at most {row['peak_requests_per_minute']} "
            f"in any minute), 429s {row['429s']}, lost {row['lost']}"
        )
        print(f"  a reader sees {len(row['reader_sees'])} embed(s):")
        for seen in row["reader_sees"]:
            print(f"    {seen['title']!r} (its message edited {seen['edits']} times)")
            if seen["line"]:
                print(f"      {seen['line']}")
        print()


if __name__ == "__main__":
    main()
