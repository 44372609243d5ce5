"""Notify from asyncio code without logging: ``async with Notifier()`` and ``await send``.

``send`` waits for the outcome and returns a ``NotificationResult`` (delivered, or kept as a
dead letter after the retries). Leaving the ``async with`` block delivers anything pending.
Here: a nightly backup job reports its result and exits non-zero if Discord was not reached.

Run it::

    DISCORD_WEBHOOK_GENERAL=https://discord.com/api/webhooks/<id>/<token> \\
    uv run python examples/asyncio_notifier.py

No webhook at hand? ``discord-logging demo`` plays a scenario against a local fake Discord.
"""

import asyncio
import time

from discord_logging import Notifier


async def backup() -> dict[str, str]:
    started = time.monotonic()
    await asyncio.sleep(0.1)  # the real work
    return {"Database": "orders", "Size": "3.2 GB", "Took": f"{time.monotonic() - started:.1f} s"}


async def main() -> int:
    async with Notifier(app_name="nightly-backup") as notifier:
        details = await backup()
        result = await notifier.send(
            "general", "Backup finished", "The nightly backup is stored.", fields=details
        )
        print(result)
    return 0 if result.ok else 1


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
