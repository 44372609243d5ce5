"""A tiny WSGI app under gunicorn whose every request logs an ERROR to Discord.

The handler is created when this module is imported. With ``preload_app = True``
(gunicorn.conf.py) that happens once, in the gunicorn master, before the workers are forked.
The handler is fork-safe: in each worker it starts its own background thread, queue and HTTP
connections on the first record, so alerts carry the worker's pid (the "Process" field).

Repeats of one error are folded (DISCORD_AGGREGATE_WINDOW, 60 s): the first is sent at once,
the rest as one "(x N since ...)" summary when the window ends, or when the worker exits.

Run it::

    DISCORD_WEBHOOK_GENERAL=https://discord.com/api/webhooks/<id>/<token> \\
    uv run gunicorn -c examples/gunicorn.conf.py examples.gunicorn_app:app
    curl localhost:8000/                 # then Ctrl+C: the workers deliver before exiting

No webhook at hand? ``discord-logging demo`` plays a scenario against a local fake Discord.
"""

import logging
import os
from collections.abc import Callable, Iterable
from typing import Any

from discord_logging import DiscordHandler

logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)-8s %(name)s: %(message)s")
logging.getLogger().addHandler(DiscordHandler(level=logging.ERROR, app_name="inventory-wsgi"))

log = logging.getLogger("inventory.web")


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    log.error("Stock service unreachable while serving %s", environ.get("PATH_INFO", "/"))
    body = f"served by worker {os.getpid()}\n".encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
