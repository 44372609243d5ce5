"""FastAPI: the async ``Notifier`` for deliberate notifications, ``DiscordHandler`` for errors.

* The lifespan creates one ``Notifier`` at startup and ``aclose()``-s it at shutdown, which
  delivers what is still pending. Endpoints ``await notifier.send(...)`` and get the outcome.
* ``DiscordHandler`` on the root logger, added where the application is imported (in each
  worker with ``--workers``), sends ERROR records; the exception handler below logs every
  unhandled exception, so each 500 becomes an error alert with its traceback. Nothing has to
  close it: when uvicorn stops (SIGTERM, Ctrl+C) the library drains it after uvicorn's
  graceful shutdown, though uvicorn then ends the process by re-raising the signal, so what
  is queued and the repeats' count of a storm arrive.

Run it (settings from DISCORD_* variables, e.g. DISCORD_WEBHOOK_GENERAL)::

    uv run uvicorn examples.fastapi_app:app        # or: uv run python examples/fastapi_app.py
    curl -X POST localhost:8000/deploys -H 'content-type: application/json' \\
         -d '{"version": "1.4.2", "by": "alice"}'
    curl localhost:8000/health
    curl localhost:8000/orders/42                    # 500 -> error alert
    curl -X POST localhost:8000/login -H 'content-type: application/json' -d '{"user": "bob"}'
                                                     # -> security alert

No webhook at hand? ``discord-logging demo`` plays a scenario against a local fake Discord.
"""

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from discord_logging import DiscordHandler, Notifier

log = logging.getLogger("shop.api")
handler = DiscordHandler(level=logging.ERROR, app_name="shop-api")
logging.getLogger().addHandler(handler)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    app.state.notifier = Notifier()
    app.state.degraded = False
    try:
        yield
    finally:
        await app.state.notifier.aclose()


app = FastAPI(lifespan=lifespan)


class Deploy(BaseModel):
    version: str
    by: str


@app.post("/deploys")
async def deploy_finished(deploy: Deploy, request: Request) -> dict[str, Any]:
    notifier: Notifier = request.app.state.notifier
    result = await notifier.send(
        "general",
        "Deploy finished",
        f"shop-api {deploy.version} is live",
        fields={"Version": deploy.version, "By": deploy.by},
    )
    return {"notified": result.ok, "status": result.status}


async def run_checks() -> dict[str, bool]:
    """Your real checks go here (database ping, queue depth, ...)."""
    return {"database": True, "payments": True}


@app.get("/health")
async def health(request: Request) -> dict[str, Any]:
    checks = await run_checks()
    failing = sorted(name for name, ok in checks.items() if not ok)
    # Notify on the change from healthy to degraded, not on every poll.
    if failing and not request.app.state.degraded:
        await request.app.state.notifier.send(
            "monitoring",
            "Health degraded",
            f"{len(failing)} check(s) failing",
            fields={"Failing": ", ".join(failing)},
        )
    request.app.state.degraded = bool(failing)
    return {"status": "degraded" if failing else "ok", "checks": checks}


class Login(BaseModel):
    user: str


@app.post("/login", status_code=403)
async def login(attempt: Login, request: Request) -> dict[str, str]:
    # extra={"alert_type": ...} routes the record to DISCORD_WEBHOOK_SECURITY.
    client = request.client.host if request.client else "?"
    log.error(
        "Login refused for %s: account locked",
        attempt.user,
        extra={"alert_type": "security", "ip": client},
    )
    return {"detail": "account locked"}


@app.get("/orders/{order_id}")
async def order(order_id: int) -> dict[str, Any]:
    raise LookupError(f"order {order_id} has no customer")  # a bug: unhandled


@app.exception_handler(Exception)
async def unhandled(request: Request, exc: Exception) -> JSONResponse:
    log.error("Unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return JSONResponse({"detail": "Internal Server Error"}, status_code=500)


if __name__ == "__main__":
    import uvicorn

    uvicorn.run(app, host="127.0.0.1", port=8000)
