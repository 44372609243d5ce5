"""One broken part never silences the others (issue 27, point 3). What can only be found
once running (a store that cannot be opened, an unreachable Redis, a template that fails on
one record, a webhook answering 401) affects only what depends on it: the healthy alert type
keeps delivering, the other records are delivered or kept, and nothing is counted
``dropped.worker_failed`` (the reason for a handler whose whole start failed).

These guard the start-up rewrite: ec27658 already isolates each of them once its worker runs
(they pass there); what it did not isolate, a bad setting, is now refused at construction
(tests/test_startup_loud.py)."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import attach
from processkit import titles
from waiting import wait_for

from discord_logging import DiscordHandler
from discord_logging.testing import FakeDiscord

FAILSAFE = 15.0
# A template for the error type that renders the sample record (start-up checks it) and every
# record but the one whose message holds "poison" (a division by zero).
POISONED = (
    '{% extends "base.j2" %}'
    '{% block title %}{{ title }}{{ "" if 1 // (0 if "poison" in message else 1) else "" }}'
    "{% endblock %}"
)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port  # closed again: nothing listens there


def _unopenable_store(tmp_path: Path, fake: FakeDiscord, error: str) -> dict[str, Any]:
    (tmp_path / "a-file").write_text("not a folder", encoding="utf-8")
    return {"store_path": tmp_path / "a-file" / "store"}


def _unreachable_redis(tmp_path: Path, fake: FakeDiscord, error: str) -> dict[str, Any]:
    return {"redis_url": f"redis://127.0.0.1:{_closed_port()}/0"}


def _poisoned_template(tmp_path: Path, fake: FakeDiscord, error: str) -> dict[str, Any]:
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "error.j2").write_text(POISONED, encoding="utf-8")
    return {"templates_dir": tmp_path / "templates"}


def _unauthorized_webhook(tmp_path: Path, fake: FakeDiscord, error: str) -> dict[str, Any]:
    fake.set_status_override(error.split("/")[-2], 401)
    return {}


Breakage = Callable[[Path, FakeDiscord, str], dict[str, Any]]
# Each broken part, and the error records that still reach Discord despite it.
BROKEN: list[tuple[str, Breakage, list[str]]] = [
    ("store-cannot-be-opened", _unopenable_store, ["error one", "poison two"]),
    ("redis-unreachable", _unreachable_redis, ["error one", "poison two"]),
    ("template-fails-on-one-record", _poisoned_template, ["error one", "poison two"]),
    ("webhook-answers-401", _unauthorized_webhook, []),
]


@pytest.fixture
def broken_handler(
    request: pytest.FixtureRequest, fake_discord: FakeDiscord, tmp_path: Path
) -> Iterator[tuple[DiscordHandler, str]]:
    """A handler with a ``general`` and an ``error`` webhook on FakeDiscord and one part
    broken by ``request.param``; yields it and the error webhook's id, closed after."""
    general, error = fake_discord.add_webhook(), fake_discord.add_webhook()
    options = {
        "webhooks": {"general": general, "error": error},
        "allowed_hosts": fake_discord.host,
        "aggregate_window": 0,
        "timeout": 1.0,
        "close_timeout": 1.0,
        "store_path": tmp_path / "store",
        **request.param(tmp_path, fake_discord, error),
    }
    handler = DiscordHandler(**options)
    try:
        yield handler, error.split("/")[-2]
    finally:
        handler.close()


@pytest.mark.parametrize(
    ("broken_handler", "errors_arriving"),
    [(b[1], b[2]) for b in BROKEN],
    ids=[b[0] for b in BROKEN],
    indirect=["broken_handler"],
)
def test_one_broken_part_leaves_the_other_alerts_delivered(
    fake_discord: FakeDiscord,
    broken_handler: tuple[DiscordHandler, str],
    errors_arriving: list[str],
) -> None:
    """Two warnings (``general``) and two errors (``error``) logged with one part broken:
    both warnings arrive, the errors arrive unless their own webhook refuses them (401: then
    they are kept as dead letters), and no record is dropped (``worker_failed`` least of
    all)."""
    handler, error_webhook = broken_handler
    log = attach(handler)
    log.warning("general one")
    log.error("error one")
    log.error("poison two")
    log.warning("general two")
    expected = sorted(["general one", "general two", *errors_arriving])

    def settled() -> bool:
        stats = handler.stats()
        return sorted(titles(fake_discord)) == expected and (
            bool(errors_arriving) or stats["dead_lettered"] >= 2
        )

    assert wait_for(settled, FAILSAFE), (titles(fake_discord), handler.stats())
    stats = handler.stats()
    assert stats["dropped"] == {}, stats  # worker_failed above all
    if not errors_arriving:
        assert fake_discord.count_status(401, error_webhook) >= 1
