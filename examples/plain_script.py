"""A plain script: ``logging.basicConfig`` plus one ``DiscordHandler`` added in code.

Records of level INFO and up go to the console and to Discord, routed by level: INFO to
DISCORD_WEBHOOK_GENERAL, ERROR to DISCORD_WEBHOOK_ERRORS, CRITICAL to DISCORD_WEBHOOK_CRITICAL
(a type without its own webhook falls back critical -> errors -> general), or by
``extra={"alert_type": "security"}`` to DISCORD_WEBHOOK_SECURITY.

Nothing is called at the end: ``logging.shutdown()`` runs at interpreter exit (``logging``
registers it with ``atexit``) and closes the handler, which delivers what is still queued
within DISCORD_CLOSE_TIMEOUT (5 s) and keeps the rest as dead letters in DISCORD_STORE_PATH.

Run it::

    DISCORD_WEBHOOK_GENERAL=https://discord.com/api/webhooks/<id>/<token> \\
    DISCORD_WEBHOOK_ERRORS=https://discord.com/api/webhooks/<id>/<token> \\
    DISCORD_WEBHOOK_SECURITY=https://discord.com/api/webhooks/<id>/<token> \\
    uv run python examples/plain_script.py

No webhook at hand? ``discord-logging demo`` plays a scenario against a local fake Discord.
"""

import logging

from discord_logging import DiscordHandler

logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)-8s %(name)s: %(message)s")
logging.getLogger().addHandler(DiscordHandler(level=logging.INFO, app_name="nightly-import"))

log = logging.getLogger("nightly_import")


def import_orders(path: str) -> None:
    log.info("Import of %s started", path)
    log.warning(
        "%s was uploaded by an unknown account",
        path,
        extra={"alert_type": "security", "by": "ftp-7"},
    )
    log.error("3 rows rejected in %s", path, extra={"rows": "17, 42, 108"})
    try:
        {"total": 0}["tax"]
    except KeyError:
        log.exception("Could not compute the totals of %s", path)
    log.critical("Import of %s aborted: the warehouse database is read-only", path)


if __name__ == "__main__":
    import_orders("orders-2024-06-01.csv")
