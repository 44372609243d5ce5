"""loguru: ``logger.add(DiscordHandler(...))``, routed by ``logger.bind(alert_type=...)``.

loguru accepts any ``logging.Handler`` as a sink. The handler reads what loguru hands it:
the message without loguru's format (time, level and place are fields of the embed), the
traceback once, in the embed's traceback section, and every ``bind()`` value as a field;
``alert_type`` among them routes the record, like ``extra={"alert_type": ...}`` in logging.

``level="WARNING"`` keeps loguru's debug and info lines out of Discord. At exit, loguru
removes its sinks but does not close a handler: ``logging.shutdown()`` does (the handler
registers itself with logging), delivering what is queued within DISCORD_CLOSE_TIMEOUT.

Run it::

    DISCORD_WEBHOOK_GENERAL=https://discord.com/api/webhooks/<id>/<token> \\
    DISCORD_WEBHOOK_SECURITY=https://discord.com/api/webhooks/<id>/<token> \\
    uv run python examples/loguru_app.py

No webhook at hand? ``discord-logging demo`` plays a scenario against a local fake Discord.
"""

from loguru import logger

from discord_logging import DiscordHandler

# diagnose=False: loguru's variable values stay out of tracebacks sent to a chat channel.
logger.add(DiscordHandler(app_name="shop-loguru"), level="WARNING", diagnose=False)


def charge(order: str, amount: int) -> None:
    raise ValueError(f"card declined for order {order} ({amount} EUR)")


if __name__ == "__main__":
    logger.info("Worker started")  # console only: below the sink's level
    logger.bind(alert_type="security", user="bob", ip="203.0.113.7").warning(
        "3 failed logins for {}", "bob"
    )
    with logger.contextualize(order="A-1001"):
        try:
            charge("A-1001", 49)
        except ValueError:
            logger.exception("Charge failed")
