"""Flask under gunicorn: every unhandled exception and every ERROR record becomes an alert.

The handler is created when this module is imported. With ``preload_app = True``
(gunicorn.conf.py) that happens once, in the gunicorn master, before the workers are forked.
The handler is fork-safe: in each worker it starts its own background thread, queue and HTTP
connections on the first record, so alerts carry the worker's pid (the "Process" field).

Flask logs an unhandled exception on ``app.logger`` ("Exception on /path [GET]", with the
traceback) before answering 500; that logger propagates to the root logger, where the
handler is. ``extra={"alert_type": "security"}`` routes a record to the security webhook.

Repeats of one error are folded (DISCORD_AGGREGATE_WINDOW, 60 s): the first is sent at once,
the rest as one "(x N since ...)" summary when the window ends, or when the worker exits.

Run it::

    DISCORD_WEBHOOK_GENERAL=https://discord.com/api/webhooks/<id>/<token> \\
    DISCORD_WEBHOOK_SECURITY=https://discord.com/api/webhooks/<id>/<token> \\
    uv run gunicorn -c examples/gunicorn.conf.py examples.flask_app:app
    curl localhost:8000/items/42         # then Ctrl+C: the workers deliver before exiting
    curl localhost:8000/reports/q2       # 500 -> an alert with the traceback

No webhook at hand? ``discord-logging demo`` plays a scenario against a local fake Discord.
"""

import logging
import os

from flask import Flask, request

from discord_logging import DiscordHandler

logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)-8s %(name)s: %(message)s")
discord = DiscordHandler(level=logging.ERROR, app_name="inventory-web")
discord.wait_started()  # a bad setting stops gunicorn here, in the master, not in silence
logging.getLogger().addHandler(discord)

app = Flask("inventory")
log = logging.getLogger("inventory.web")


@app.get("/ready")
def ready() -> str:
    return f"served by worker {os.getpid()}\n"


@app.get("/items/<int:item>")
def item(item: int) -> str:
    log.error("Stock service unreachable while serving %s", request.path)
    return f"served by worker {os.getpid()}\n"


@app.post("/login")
def login() -> tuple[str, int]:
    log.error(
        "Login refused for %s: account locked",
        request.form.get("user", "?"),
        extra={"alert_type": "security", "ip": request.remote_addr},
    )
    return "locked\n", 403


@app.get("/reports/<name>")
def report(name: str) -> str:
    raise LookupError(f"report {name} has no data source")  # a bug: Flask logs it, answers 500
