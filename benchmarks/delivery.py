"""Delivery throughput against FakeDiscord at Discord's default limits.

Sends a burst of 300 distinct notifications to one webhook (5 requests / 2 s announced,
30 messages / 60 s hidden) twice: short records (< 100 characters) and records near the
embed limits; then a burst beyond the limits (1,500 at once, a queue that holds them), which
goes in digests: the sustained capacity. Prints records delivered per minute, messages sent,
429s received and records lost, next to a one-record-per-message sender (what other
handlers do) in the same run.

    uv run python benchmarks/delivery.py [--records 300] [--overload 1500] [--baseline-seconds 60]
"""

from __future__ import annotations

import argparse
import asyncio
import time

import httpx

from discord_logging.capture.direct import build_notification
from discord_logging.delivery.notifier import Notifier
from discord_logging.render.payload import build_payload
from discord_logging.render.templating import EmbedRenderer
from discord_logging.testing import FakeDiscord


def short_record(i: int) -> tuple[str, str]:
    return f"job {i} failed", f"worker {i % 7} lost its lease on shard {i}"


def full_record(i: int) -> tuple[str, str]:
    title = f"record {i} " + "t" * 230
    body = f"record {i} " + ("lorem ipsum dolor sit amet " * 160)[:4000]
    return title, body


async def run_engine(kind: str, records: int, queue_size: int = 100) -> dict[str, float]:
    make = short_record if kind == "short" else full_record
    with FakeDiscord() as fake:
        url = fake.add_webhook()
        notifier = Notifier(
            webhooks={"general": url},
            allowed_hosts=fake.host,
            aggregate_window=0,
            queue_size=queue_size,
        )
        started = time.monotonic()
        for i in range(records):
            title, message = make(i)
            notifier.submit(build_notification("general", title, message))

        def delivered() -> int:  # first time, and from the dead letters after a queue overflow
            return notifier.stats.get("delivered") + notifier.stats.get("redelivered")

        while delivered() < records and time.monotonic() - started < 600:
            await asyncio.sleep(0.05)
        elapsed = time.monotonic() - started
        stats = notifier.stats.snapshot()
        await notifier.aclose(5)
        delivered = stats["delivered"] + stats["redelivered"]
        return {
            "delivered": delivered,
            "seconds": elapsed,
            "per_minute": delivered / elapsed * 60,
            "messages": stats["messages_sent"],
            "digests": stats["digests_sent"],
            "records_per_message": stats["records_per_message"],
            "capacity_per_minute": stats["records_per_message"] * 30,
            "429s": fake.count_status(429),
            "lost": records - delivered - len(notifier.dead_letters),
            "dead_lettered_now": len(notifier.dead_letters),
        }


async def run_baseline(kind: str, records: int, seconds: float) -> dict[str, float]:
    """One record per message, waiting out 429s as most existing handlers do."""
    make = short_record if kind == "short" else full_record
    renderer = EmbedRenderer()
    with FakeDiscord() as fake:
        url = fake.add_webhook() + "?wait=true"
        delivered = 0
        started = time.monotonic()
        async with httpx.AsyncClient() as client:
            for i in range(records):
                if time.monotonic() - started > seconds:
                    break
                title, message = make(i)
                embed = renderer.render(build_notification("general", title, message)).embed
                while time.monotonic() - started <= seconds:
                    response = await client.post(url, json=build_payload([embed]))
                    if response.status_code == 429:
                        await asyncio.sleep(float(response.json().get("retry_after", 1)))
                        continue
                    delivered += 1
                    break
        elapsed = time.monotonic() - started
        return {
            "delivered": delivered,
            "seconds": elapsed,
            "per_minute": delivered / elapsed * 60,
            "429s": fake.count_status(429),
        }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=300)
    parser.add_argument("--overload", type=int, default=1500)
    parser.add_argument("--baseline-seconds", type=float, default=60.0)
    args = parser.parse_args()
    print(f"burst of {args.records} distinct records to one webhook, Discord's default limits\n")
    for kind in ("short", "full-size"):
        burst = await run_engine(kind, args.records)
        beyond = await run_engine(kind, args.overload, queue_size=args.overload)
        base = await run_baseline(kind, args.records, args.baseline_seconds)
        print(f"[{kind} records]")
        runs = ((f"{args.records} at once", burst), (f"{args.overload} at once", beyond))
        for name, ours in runs:
            print(
                f"  discord-logging, {name}: {ours['delivered']:.0f} delivered in "
                f"{ours['seconds']:.1f}s ({ours['per_minute']:.0f}/min), {ours['messages']:.0f} "
                f"messages ({ours['digests']:.0f} digests), {ours['records_per_message']:.1f} "
                f"records/message, 429s {ours['429s']:.0f}, lost {ours['lost']:.0f}"
            )
        print(
            f"  sustained capacity beyond the limits: {beyond['capacity_per_minute']:.0f} "
            "records/min at 30 messages/min"
        )
        print(
            f"  one-per-message: {base['delivered']:.0f} delivered in {base['seconds']:.1f}s "
            f"({base['per_minute']:.0f}/min), 429s {base['429s']:.0f}"
        )
        ratio = beyond["capacity_per_minute"] / max(base["per_minute"], 1e-9)
        print(f"  ratio (sustained records/min, ours / one-per-message): {ratio:.1f}x\n")


if __name__ == "__main__":
    asyncio.run(main())
