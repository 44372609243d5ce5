"""Celery: failed tasks and your tasks' own records become alerts, from every pool process.

By default a starting worker replaces the root logger's handlers with its own
(``worker_hijack_root_logger``), and a handler added before that is gone. Connecting to the
``setup_logging`` signal tells Celery to leave logging alone: this module's receiver sets up
the console and DiscordHandler, once, in the worker's main process. (Alternatively set
``worker_hijack_root_logger = False`` and add the handler where your project configures
logging.)

Pool processes (the default ``prefork`` pool) are forked from the main process: each has the
handler, which notices the fork and starts its own delivery thread on its first record, so a
task's records are sent while it runs. A pool process ends with ``os._exit`` (no atexit, no
``logging.shutdown()``); the library drains the handler at billiard's last step before it
(after Celery's ``worker_process_shutdown``), so what a task logged (and the summary of
repeats held for the aggregation window) is delivered before the process goes, on
a warm shutdown (SIGTERM, Ctrl+C once) and when ``worker_max_tasks_per_child`` recycles it.
Nothing to write for that. A pool process killed by SIGKILL (cold shutdown,
``task_time_limit``) loses what it had not yet sent.

Celery logs each failed task on ``celery.app.trace`` at ERROR ("Task shop.charge[<id>]
raised unexpected: ...", with the traceback): an alert, without any code in the task.

Run it (a Redis broker on localhost; CELERY_BROKER_URL to use another)::

    DISCORD_WEBHOOK_GENERAL=https://discord.com/api/webhooks/<id>/<token> \\
    DISCORD_WEBHOOK_SECURITY=https://discord.com/api/webhooks/<id>/<token> \\
    uv run celery -A examples.celery_app worker --loglevel INFO
    uv run python examples/celery_app.py      # queues the example tasks

No webhook at hand? ``discord-logging demo`` plays a scenario against a local fake Discord.
"""

import logging
import os
from typing import Any

from celery import Celery, signals

from discord_logging import DiscordHandler

app = Celery("shop", broker=os.environ.get("CELERY_BROKER_URL", "redis://localhost:6379/0"))
app.conf.broker_connection_retry_on_startup = True

log = logging.getLogger("shop.tasks")


@signals.setup_logging.connect
def configure_logging(loglevel: int | None = None, **_: Any) -> None:
    """Celery's signal: logging is ours. Runs once, in the worker's main process."""
    logging.basicConfig(
        level=loglevel or logging.INFO,
        format="%(asctime)s %(levelname)-8s %(processName)s %(name)s: %(message)s",
    )
    logging.getLogger().addHandler(DiscordHandler(level=logging.WARNING, app_name="shop-worker"))


@app.task(name="shop.charge")
def charge(order: str, amount: int) -> None:
    log.info("Charging order %s", order)
    raise ValueError(f"card declined for order {order} ({amount} EUR)")  # Celery logs it


@app.task(name="shop.check_login")
def check_login(user: str, ip: str, failures: int) -> None:
    if failures >= 3:
        log.warning(
            "%d failed logins for %s", failures, user, extra={"alert_type": "security", "ip": ip}
        )


@app.task(name="shop.sync_stock")
def sync_stock(supplier: str, attempts: int) -> None:
    for _ in range(attempts):  # a storm: one alert now, "(x N)" when its window ends
        log.error("Stock sync failed for %s", supplier)


if __name__ == "__main__":
    charge.delay("A-1001", 49)
    check_login.delay("bob", "203.0.113.7", 3)
    sync_stock.delay("ACME", 5)
    print("queued 3 tasks")
