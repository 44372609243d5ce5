"""Shared fixtures: a clean environment and logging state for every test."""

from __future__ import annotations

import gc
import logging
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from redis_server import RedisServer, running_redis

from discord_logging.testing import FakeDiscord

if TYPE_CHECKING:
    from discord_logging.delivery.notifier import Notifier

WEBHOOK = "https://discord.com/api/webhooks/111111111111111111/general-TOKEN_aaaaaaaaaaaaaaaaaaaa"
ERRORS_WEBHOOK = (
    "https://discord.com/api/webhooks/222222222222222222/errors-TOKEN_bbbbbbbbbbbbbbbbbbb"
)


def attach(handler: logging.Handler, name: str = "app") -> logging.Logger:
    """Logger ``name`` at DEBUG sending only to ``handler`` (restored after the test)."""
    logger = logging.getLogger(name)
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    return logger


def pytest_collection_finish(session: pytest.Session) -> None:
    """What exists once the tests are collected (modules, hypothesis, coverage) lives for the
    whole session: frozen, the collection after each test never walks it again (without
    this, those collections doubled the fast tier's time)."""
    gc.collect()
    gc.freeze()


@pytest.fixture(autouse=True)
def _leaks_found_where_made() -> Iterator[None]:
    """A full garbage collection after each test (defined first: it runs after every other
    fixture's teardown). A connection, socket or file a test leaves open is then reported
    by that test (``filterwarnings = error``), not by whichever later test the collector
    happened to run in, as Python 3.13's CI run had it."""
    yield
    gc.collect()


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No DISCORD_* variable or .env file from the developer's machine leaks into a test."""
    for key in list(os.environ):
        if key.startswith("DISCORD_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("DISCORD_STORE_PATH", str(tmp_path / "store"))
    monkeypatch.chdir(tmp_path)


def _logger_state() -> dict[str, tuple[list[logging.Handler], int, bool, bool]]:
    loggers = [logging.getLogger()] + [
        lg for lg in logging.root.manager.loggerDict.values() if isinstance(lg, logging.Logger)
    ]
    return {lg.name: (lg.handlers[:], lg.level, lg.propagate, lg.disabled) for lg in loggers}


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """Every logger's handlers, level, propagation and disabled flag are restored after each
    test, and handlers a test added are closed (structlog's practice)."""
    saved = _logger_state()
    yield
    for name, (handlers, _, _, _) in _logger_state().items():
        logger = logging.getLogger(name) if name != "root" else logging.getLogger()
        before = saved.get(name, ([], logging.NOTSET, True, False))
        for handler in handlers:
            if handler not in before[0]:
                logger.removeHandler(handler)
                handler.close()
        logger.handlers[:] = before[0]
        logger.setLevel(before[1])
        logger.propagate = before[2]
        logger.disabled = before[3]


@pytest.fixture(autouse=True)
def _close_stores(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every Store a test opens is closed afterwards, on this thread: SQLite connections left
    for the garbage collector are reported by Python 3.13 at some later, unrelated test."""
    from discord_logging.store import Store

    opened: list[Store] = []
    original = Store.__init__

    def tracking(self: Store, *args: object, **kwargs: object) -> None:
        original(self, *args, **kwargs)  # type: ignore[arg-type]
        opened.append(self)

    monkeypatch.setattr(Store, "__init__", tracking)
    yield
    for store in opened:
        store.close()


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A started ``redis-server`` on 127.0.0.1 (free port, nothing saved), stopped after;
    skipped where there is none, failed in CI (see :func:`redis_server.running_redis`)."""
    with running_redis(tmp_path) as server:
        yield server


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Say how much of the letter-rules model ran (tests/test_letter_rules.py)."""
    model = sys.modules.get("test_letter_rules")
    run = getattr(model, "RUN", None)
    if run:
        terminalreporter.write_line(
            f"letter rules model: {run['examples']} examples, {run['steps']} steps, "
            "every invariant checked after each step"
        )


@pytest.fixture
def fast_discord() -> Iterator[FakeDiscord]:
    """FakeDiscord with Discord's limits on short windows (0.3 s announced, 1 s hidden), so a
    test sees them within a fraction of a second."""
    with FakeDiscord(webhook_window=0.3, channel_window=1.0) as server:
        yield server


def fast_notifier(fake: FakeDiscord, webhook: str = "general", **options: Any) -> Notifier:
    """A Notifier on a fresh webhook of ``fake`` (``fast_discord``), its hidden window as
    short as the fake's, no retry jitter."""
    from discord_logging.delivery.notifier import Notifier

    return Notifier(
        webhooks={webhook: fake.add_webhook()},
        allowed_hosts=fake.host,
        channel_window=1.0,
        rand=lambda: 0.0,
        **options,
    )
