"""structlog on top of logging, in both of its set-ups, routed by an ``alert_type`` key.

structlog documents two ways to send its events through logging handlers; both work:

* ``ProcessorFormatter`` (``python examples/structlog_app.py formatter``, the default): the
  last processor is ``ProcessorFormatter.wrap_for_formatter``, and the handlers render the
  event with a ``ProcessorFormatter`` (here one for both, the console and Discord).
  DiscordHandler reads the event itself: its ``event`` is the title, the other keys are
  fields, ``exc_info`` the traceback section; what the formatter rendered (without the
  traceback) is the message. Records of plain ``logging`` loggers go through the same
  formatter (``foreign_pre_chain``) and alert as usual.
* ``render_to_log_kwargs`` (``python examples/structlog_app.py kwargs``): the last processor
  turns the event into ``logger.error("payment declined", extra={...})``: the event is the
  title, the other keys are fields, as with ``extra=`` in plain logging. Level, logger name
  and time are left to logging here (its formatter shows them on the console; the embed has
  them anyway).

In both, ``alert_type="security"`` routes the event like ``extra={"alert_type": ...}``.

Run it::

    DISCORD_WEBHOOK_GENERAL=https://discord.com/api/webhooks/<id>/<token> \\
    DISCORD_WEBHOOK_SECURITY=https://discord.com/api/webhooks/<id>/<token> \\
    uv run python examples/structlog_app.py [formatter|kwargs]

No webhook at hand? ``discord-logging demo`` plays a scenario against a local fake Discord.
"""

import logging
import sys

import structlog

from discord_logging import DiscordHandler

SHARED = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.processors.TimeStamper(fmt="iso"),
]


def configure_with_log_kwargs() -> None:
    """structlog's "render_to_log_kwargs" set-up: events become ordinary records."""
    structlog.configure(
        processors=[structlog.contextvars.merge_contextvars, structlog.stdlib.render_to_log_kwargs],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
    )
    console = logging.StreamHandler()
    console.setFormatter(logging.Formatter("%(asctime)s %(levelname)-8s %(name)s: %(message)s"))
    discord = DiscordHandler(level=logging.WARNING, app_name="shop-structlog")
    logging.basicConfig(level=logging.INFO, handlers=[console, discord])


def configure_with_processor_formatter() -> None:
    """structlog's "ProcessorFormatter" set-up: each handler renders the event dict."""
    structlog.configure(
        processors=[*SHARED, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
    )

    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=SHARED,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.dev.ConsoleRenderer(),  # its colours are removed from Discord's copy
        ],
    )
    console = logging.StreamHandler()
    discord = DiscordHandler(level=logging.WARNING, app_name="shop-structlog")
    for handler in (console, discord):
        handler.setFormatter(formatter)
    logging.basicConfig(level=logging.INFO, handlers=[console, discord])


if __name__ == "__main__":
    if sys.argv[1:] == ["kwargs"]:
        configure_with_log_kwargs()
    else:
        configure_with_processor_formatter()
    log = structlog.get_logger("shop.checkout")

    log.info("checkout opened", cart="c-8812")  # console only: below the handler's level
    log.warning("3 failed logins", user="bob", ip="203.0.113.7", alert_type="security")
    structlog.contextvars.bind_contextvars(request_id="r-5521")
    try:
        {"total": 0}["tax"]
    except KeyError:
        log.exception("payment declined", order="A-1001")
    logging.getLogger("shop.legacy").error("Stock sync failed for %s", "ACME")
