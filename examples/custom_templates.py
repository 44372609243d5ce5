"""Custom embed templates: ``templates_dir`` holding ``<alert type>.j2`` files.

``custom_templates/error.j2`` and ``critical.j2`` extend the built-in ``base.j2`` and override
some of its blocks (title, fields, footer, color); the other alert types keep the built-in
look. Templates are checked when the handler is created, so a typo fails at start-up.
The setting can also come from the environment: DISCORD_TEMPLATES_DIR=examples/custom_templates.

Run it::

    DISCORD_WEBHOOK_GENERAL=https://discord.com/api/webhooks/<id>/<token> \\
    uv run python examples/custom_templates.py

No webhook at hand? ``discord-logging demo`` plays a scenario against a local fake Discord.
"""

import logging
from pathlib import Path

from discord_logging import DiscordHandler

TEMPLATES = Path(__file__).with_name("custom_templates")

logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)-8s %(name)s: %(message)s")
logging.getLogger().addHandler(DiscordHandler(level=logging.ERROR, templates_dir=str(TEMPLATES)))

log = logging.getLogger("shop.payments")

if __name__ == "__main__":
    log.error("Refund %s failed: card expired", "R-2291")
    try:
        raise ConnectionError("payments database unreachable")
    except ConnectionError:
        log.critical("Checkout is down", exc_info=True)
