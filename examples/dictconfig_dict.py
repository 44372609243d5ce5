"""``logging.config.dictConfig`` with a dict: console for everything, Discord for errors.

The handler is named by its import path, like any stdlib handler; every other key of its
entry is a ``DiscordHandler`` keyword (webhooks, routes, app_name, ...). Webhook URLs are not
in the dict: they come from DISCORD_WEBHOOK_GENERAL / DISCORD_WEBHOOK_ERRORS / ...

Run it::

    DISCORD_WEBHOOK_GENERAL=https://discord.com/api/webhooks/<id>/<token> \\
    uv run python examples/dictconfig_dict.py

No webhook at hand? ``discord-logging demo`` plays a scenario against a local fake Discord.
"""

import logging
import logging.config

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "console": {"format": "%(asctime)s %(levelname)-8s %(name)s: %(message)s"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "console",
            "level": "INFO",
        },
        "discord": {
            "class": "discord_logging.DiscordHandler",
            "level": "ERROR",
            "app_name": "inventory-sync",
        },
    },
    "root": {"level": "INFO", "handlers": ["console", "discord"]},
}

logging.config.dictConfig(LOGGING)
log = logging.getLogger("inventory")

if __name__ == "__main__":
    log.info("Synced 1204 items")  # console only: below the Discord handler's level
    log.warning("Supplier feed is 2 hours old")  # console only
    log.error("Supplier %s rejected the stock update", "ACME", extra={"http_status": 409})
