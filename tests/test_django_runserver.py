"""A new user's Django project (issue 27, point 1): ``django-admin startproject``, the
documented ``LOGGING``, ``manage.py runserver`` with its autoreloader. The serving process
runs ``django.setup()`` twice (at start, then again from the project's ``wsgi.py`` when
runserver loads its handler), so ``dictConfig`` closes a handler whose worker may still be
importing; on ec27658 that close waited for the worker under logging's lock (the worker's
imports needed that lock), and the server started answering after 62-75 s."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from example_runs import load_example
from freshkit import FAILSAFE
from processkit import titles
from redis_server import free_port
from waiting import wait_for

from discord_logging.testing import FakeDiscord

# The project's urls.py: a view that logs an error the way application code does.
URLS = """
import logging

from django.http import HttpResponse
from django.urls import path

log = logging.getLogger("shop")


def ok(request):
    return HttpResponse("ok")


def checkout(request):
    log.error("checkout failed for order %s", 42)
    return HttpResponse("logged")


urlpatterns = [path("ok/", ok), path("checkout/", checkout)]
"""


def _project(tmp_path: Path) -> Path:
    """``django-admin startproject shop`` in ``tmp_path``, with the documented ``LOGGING``
    (examples/django_settings.py) and the view above; the project's folder."""
    site = tmp_path / "site"
    site.mkdir()
    made = subprocess.run(
        [sys.executable, "-m", "django", "startproject", "shop", str(site)],
        capture_output=True,
        text=True,
        timeout=FAILSAFE,
        check=False,
    )
    assert made.returncode == 0, made.stderr
    logging_dict = load_example("django_settings").LOGGING
    with (site / "shop" / "settings.py").open("a", encoding="utf-8") as settings:
        settings.write(f"\nLOGGING = {logging_dict!r}\n")
    (site / "shop" / "urls.py").write_text(URLS, encoding="utf-8")
    return site


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1.0) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


@pytest.fixture
def runserver(fake_discord: FakeDiscord, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """``manage.py runserver 127.0.0.1:<free port>`` (autoreloader on) in its own process
    group, the webhooks in DISCORD_* as the documented settings expect; yields its base URL
    and log file, and ends the whole group (reloader and server) after the test."""
    site = _project(tmp_path)
    env = {k: v for k, v in os.environ.items() if not k.startswith("DISCORD_")}
    env.update(
        DISCORD_WEBHOOK_ERRORS=fake_discord.add_webhook(host="localhost"),
        DISCORD_ALLOWED_HOSTS=fake_discord.named_host,
        DISCORD_STORE_PATH=str(tmp_path / "store"),
        DISCORD_CLOSE_TIMEOUT="1",
        PYTHONUNBUFFERED="1",
    )
    port = free_port()
    log = tmp_path / "runserver.log"
    with log.open("wb") as out:
        server = subprocess.Popen(
            [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}"],
            cwd=site,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield f"http://127.0.0.1:{port}", log
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(FAILSAFE)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(FAILSAFE)
        with contextlib.suppress(ProcessLookupError):  # the reloader's child, if it is left
            os.killpg(server.pid, signal.SIGKILL)


@pytest.mark.slow
def test_django_runserver_with_its_autoreloader_answers_and_its_alert_arrives(
    fake_discord: FakeDiscord, runserver: tuple[str, Path]
) -> None:
    """A project made by ``django-admin startproject`` with the documented ``LOGGING``:
    ``manage.py runserver`` (autoreloader on) answers an HTTP request within the failsafe, and
    the error a view logs arrives at its webhook."""
    base, log = runserver
    served = wait_for(lambda: _answers(f"{base}/ok/"), FAILSAFE)
    output = log.read_text(errors="replace")[-3000:]
    assert served, f"runserver did not answer within {FAILSAFE:.0f} s\n{output}"
    assert _answers(f"{base}/checkout/")
    arrived = wait_for(lambda: titles(fake_discord) == ["checkout failed for order 42"], FAILSAFE)
    assert arrived, f"{titles(fake_discord)}\n{log.read_text(errors='replace')[-3000:]}"
