"""A custom alert type, "billing", with its own webhook, and a deliberate role ping.

* DISCORD_WEBHOOK_BILLING defines the type: its records go to that channel.
* ``routes`` sends every record of the ``shop.payments`` logger (and its children) there;
  ``extra={"alert_type": "billing"}`` sends one record there from any logger.
* ``mentions`` pings a role on critical alerts only. Nothing else can ping: the text of a log
  record never triggers @everyone or a mention, and each message allows exactly these pings.

Run it::

    DISCORD_WEBHOOK_GENERAL=https://discord.com/api/webhooks/<id>/<token> \\
    DISCORD_WEBHOOK_BILLING=https://discord.com/api/webhooks/<id>/<token> \\
    DISCORD_WEBHOOK_CRITICAL=https://discord.com/api/webhooks/<id>/<token> \\
    uv run python examples/custom_alert_type.py

No webhook at hand? ``discord-logging demo`` plays a scenario against a local fake Discord.
"""

import logging

from discord_logging import DiscordHandler

ON_CALL_ROLE = "123456789012345678"  # Server settings > Roles > ... > Copy Role ID

logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)-8s %(name)s: %(message)s")
logging.getLogger().addHandler(
    DiscordHandler(
        level=logging.WARNING,
        routes={"shop.payments": "billing"},
        mentions={"critical": [f"role:{ON_CALL_ROLE}"]},
    )
)

if __name__ == "__main__":
    logging.getLogger("shop.payments.stripe").error("Charge for order %s declined", "A-1001")
    logging.getLogger("shop.refunds").warning(
        "Refund of %s EUR issued by hand", "49.90", extra={"alert_type": "billing"}
    )
    logging.getLogger("shop.orders").critical("Checkout is down @everyone")  # pings the role only
