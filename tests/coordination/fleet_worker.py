"""One process of a fleet test: a DiscordHandler logging distinct records to one webhook.

Run as ``python fleet_worker.py CONFIG_JSON``; prints the handler's stats as JSON on stdout.
Config keys: ``webhooks`` (name -> URL), ``host``, ``store``, ``prefix``, ``count``,
``bursts``, ``rate_limit``, ``channel_window``, optional ``redis_url``, ``fleet_size``,
``redeliver_only`` (log nothing: only redeliver what the store keeps).
"""

from __future__ import annotations

import json
import logging
import sys
import time

from discord_logging import DiscordHandler


def main(config: dict[str, object]) -> None:
    handler = DiscordHandler(
        webhooks=config["webhooks"],  # type: ignore[arg-type]
        allowed_hosts=str(config["host"]),
        store_path=str(config["store"]),
        rate_limit=int(config.get("rate_limit", 30)),  # type: ignore[call-overload]
        aggregate_window=0,
        redis_url=config.get("redis_url"),  # type: ignore[arg-type]
        fleet_size=config.get("fleet_size"),  # type: ignore[arg-type]
        engine_options={"channel_window": float(config.get("channel_window", 60.0))},  # type: ignore[arg-type]
    )
    logger = logging.getLogger(f"fleet.{config['prefix']}")
    logger.propagate = False
    logger.addHandler(handler)
    count, bursts = int(config.get("count", 0)), int(config.get("bursts", 1))  # type: ignore[call-overload]
    if config.get("redeliver_only"):
        worker = handler.worker  # started with the handler
        assert worker is not None

        async def start() -> None:
            worker.notifier.start()  # the lanes start and look for kept letters at once

        worker.call(start, 60)  # a failsafe: the machine may be busy
        time.sleep(float(config.get("linger", 1.0)))  # type: ignore[arg-type]
    for i in range(count):
        logger.error("%s record %d", config["prefix"], i)
        if bursts > 1 and (i + 1) % max(1, count // bursts) == 0:
            time.sleep(0.05)
    handler.flush(30)
    handler.close()
    print(json.dumps(handler.stats()))


if __name__ == "__main__":
    main(json.loads(sys.argv[1]))
