"""Shared fixtures: a clean environment and logging state for every test."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

WEBHOOK = "https://discord.com/api/webhooks/111111111111111111/general-TOKEN_aaaaaaaaaaaaaaaaaaaa"
ERRORS_WEBHOOK = (
    "https://discord.com/api/webhooks/222222222222222222/errors-TOKEN_bbbbbbbbbbbbbbbbbbb"
)


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No DISCORD_* variable or .env file from the developer's machine leaks into a test."""
    for key in list(os.environ):
        if key.startswith("DISCORD_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """Loggers, handlers and levels are restored after each test (structlog's practice)."""
    root = logging.getLogger()
    saved_handlers = root.handlers[:]
    saved_level = root.level
    saved_loggers = dict(logging.root.manager.loggerDict)
    yield
    for handler in root.handlers[:]:
        if handler not in saved_handlers:
            root.removeHandler(handler)
            handler.close()
    root.setLevel(saved_level)
    for name in list(logging.root.manager.loggerDict):
        if name not in saved_loggers:
            logger = logging.root.manager.loggerDict[name]
            if isinstance(logger, logging.Logger):
                for handler in logger.handlers[:]:
                    logger.removeHandler(handler)
                    handler.close()
