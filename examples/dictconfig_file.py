"""``dictConfig`` from a file: ``logging.yaml`` (the default) or ``logging.json``.

Both files configure the same thing: a console handler, and a ``DiscordHandler`` for ERROR
and up that sends records of the ``reports.security`` logger as security alerts.

Run it::

    DISCORD_WEBHOOK_GENERAL=https://discord.com/api/webhooks/<id>/<token> \\
    DISCORD_WEBHOOK_SECURITY=https://discord.com/api/webhooks/<id>/<token> \\
    uv run python examples/dictconfig_file.py [examples/logging.json]

No webhook at hand? ``discord-logging demo`` plays a scenario against a local fake Discord.
"""

import json
import logging
import logging.config
import sys
from pathlib import Path

import yaml  # pip install pyyaml


def configure_logging(path: Path) -> None:
    with path.open(encoding="utf-8") as file:
        config = json.load(file) if path.suffix == ".json" else yaml.safe_load(file)
    logging.config.dictConfig(config)


if __name__ == "__main__":
    default = Path(__file__).with_name("logging.yaml")
    configure_logging(Path(sys.argv[1]) if len(sys.argv) > 1 else default)

    logging.getLogger("reports").info("Monthly report built in 12.4 s")  # console only
    logging.getLogger("reports").error("Report upload to S3 failed after 3 attempts")
    logging.getLogger("reports.security").error("Report %s downloaded from an unknown IP", "Q2")
