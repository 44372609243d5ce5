"""DiscordHandler end to end through logging, against FakeDiscord over HTTP."""

from __future__ import annotations

import json
import logging
import logging.config
import os
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import WEBHOOK, attach
from startkit import started_handler
from waiting import FAILSAFE

from discord_logging import DiscordHandler, ignore_logger
from discord_logging.errors import ConfigurationError
from discord_logging.testing import FakeDiscord

TYPES = ["general", "error", "critical", "tracklist", "monitoring", "security"]


@pytest.fixture
def fake() -> Iterator[FakeDiscord]:
    """FakeDiscord with Discord's limits; handlers here send few messages."""
    with FakeDiscord() as server:
        yield server


def handler_for(fake: FakeDiscord, **options: Any) -> DiscordHandler:
    webhooks = options.pop("webhooks", None) or {"general": fake.add_webhook()}
    return DiscordHandler(webhooks=webhooks, allowed_hosts=fake.host, **options)


def titles(fake: FakeDiscord) -> list[str]:
    return [e.get("title", "") for m in fake.messages for e in m.embeds]


def test_dictconfig_class_form(fake: FakeDiscord) -> None:
    """ "class": "discord_logging.DiscordHandler" with keyword settings works."""
    url = fake.add_webhook()
    logging.config.dictConfig(
        {
            "version": 1,
            "disable_existing_loggers": False,
            "handlers": {
                "discord": {
                    "class": "discord_logging.DiscordHandler",
                    "level": "ERROR",
                    "webhooks": {"general": url},
                    "allowed_hosts": fake.host,
                    "app_name": "shop",
                }
            },
            "loggers": {"shop": {"handlers": ["discord"], "level": "INFO", "propagate": False}},
        }
    )
    logger = logging.getLogger("shop")
    logger.info("not sent: below the handler level")
    logger.error("payment failed for order %s", 42)
    handler = logger.handlers[0]
    assert isinstance(handler, DiscordHandler)
    assert handler.flush(FAILSAFE)
    handler.close()
    assert titles(fake) == ["payment failed for order 42"]
    assert fake.messages[0].embeds[0]["footer"]["text"] == "shop Error Alert"


def test_dictconfig_factory_form(fake: FakeDiscord) -> None:
    """ "()": "discord_logging.DiscordHandler" works too."""
    url = fake.add_webhook()
    logging.config.dictConfig(
        {
            "version": 1,
            "disable_existing_loggers": False,
            "handlers": {
                "discord": {
                    "()": "discord_logging.DiscordHandler",
                    "webhooks": {"general": url},
                    "allowed_hosts": [fake.host],
                }
            },
            "loggers": {"factory": {"handlers": ["discord"], "level": "INFO"}},
        }
    )
    logger = logging.getLogger("factory")
    logger.warning("hello")
    handler = logger.handlers[0]
    assert isinstance(handler, DiscordHandler)
    assert handler.flush(FAILSAFE)
    handler.close()
    assert titles(fake) == ["hello"]


def test_dictconfig_fails_at_once_on_a_bad_setting() -> None:
    """A bad setting makes ``dictConfig`` fail at once, as any stdlib handler's does, naming
    the handler and (in the cause) the setting as it was given and its fix; no handler is left
    behind to drop records."""
    with pytest.raises(ValueError, match="Unable to configure handler 'd'") as info:
        logging.config.dictConfig(
            {
                "version": 1,
                "handlers": {
                    "d": {
                        "class": "discord_logging.DiscordHandler",
                        "webhooks": {"general": "https://discord.com/api/webhooks/1/tok"},
                        "rate_limit": -1,
                    }
                },
                "loggers": {"bad_setting": {"handlers": ["d"], "propagate": False}},
            }
        )
    cause = info.value.__cause__
    assert isinstance(cause, ConfigurationError)
    assert "rate_limit: -1 is not a whole number from 1 to 10000. Fix:" in str(cause)
    assert "DISCORD_RATE_LIMIT" not in str(cause)  # given as a keyword, named as one
    alive = [ref() for ref in logging._handlerList]  # type: ignore[attr-defined]
    assert not any(isinstance(h, DiscordHandler) for h in alive)


def test_six_alert_types_routed(fake: FakeDiscord) -> None:
    """Each alert type reaches its own webhook: level, logger rules and extra."""
    urls = {kind: fake.add_webhook() for kind in TYPES}
    handler = handler_for(
        fake, webhooks=urls, routes={"app.tracks": "tracklist", "app.health": "monitoring"}
    )
    attach(handler, "app")
    logging.getLogger("app").info("general info")
    logging.getLogger("app").error("an error")
    logging.getLogger("app").critical("down!")
    logging.getLogger("app.tracks").info("track published")
    logging.getLogger("app.health").warning("disk 91%")
    logging.getLogger("app").warning("login burst", extra={"alert_type": "security"})
    assert handler.flush(FAILSAFE)
    handler.close()
    for kind, url in urls.items():
        webhook_id = url.split("/")[-2]
        assert len(fake.messages_for(webhook_id)) == 1, kind
    security = fake.messages_for(urls["security"].split("/")[-2])[0]
    assert security.embeds[0]["title"].endswith("login burst")
    assert handler.stats()["per_alert_type"]["security"]["delivered"] == 1


def test_many_threads_logging_at_once(fake: FakeDiscord) -> None:
    """Eight threads logging distinct records: every one is delivered or aggregated."""
    handler = handler_for(fake, queue_size=1000, aggregate_window=0)
    logger = attach(handler)

    def work(n: int) -> None:
        for i in range(50):
            logger.error("thread %d record %d", n, i)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert handler.flush(FAILSAFE)
    stats = handler.stats()
    handler.close()
    assert stats["emitted"] == 400
    assert stats["delivered"] == 400
    assert stats["dead_lettered"] == 0


def test_storm_is_aggregated_with_the_right_count(fake: FakeDiscord) -> None:
    """1,000 identical errors become one alert whose message is edited to say x 1000 once the
    incident goes quiet."""
    handler = handler_for(fake, aggregate_window=0.3, incident_edit_interval=0.05)
    logger = attach(handler)
    for i in range(1000):
        logger.error("database unreachable (attempt %d)", i)

    def quiet() -> bool:  # the incident went quiet: its last update edited the message
        shown = fake.message(fake.messages[0].message_id) if fake.messages else None
        return shown is not None and "quiet since" in shown.embeds[0].get("description", "")

    deadline = time.monotonic() + FAILSAFE
    while not quiet() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert handler.flush(FAILSAFE)
    stats = handler.stats()
    handler.close()
    assert len(fake.messages) == 1
    shown = fake.message(fake.messages[0].message_id)
    assert shown is not None
    assert shown.embeds[0]["title"].endswith("(x 1000)")
    assert "quiet since" in shown.embeds[0]["description"]
    assert stats["emitted"] == 1000
    assert stats["delivered"] + stats["aggregated"] == 1000


def test_storm_as_a_second_message_with_the_right_count(fake: FakeDiscord) -> None:
    """With incident_updates="message", 1,000 identical errors become the first alert plus
    one summary message saying x 1000 (the behaviour of earlier versions)."""
    handler = handler_for(fake, aggregate_window=0.3, incident_updates="message")
    logger = attach(handler)
    for i in range(1000):
        logger.error("database unreachable (attempt %d)", i)
    time.sleep(0.4)  # let the window end so its summary is released
    assert handler.flush(FAILSAFE)
    stats = handler.stats()
    handler.close()
    assert len(fake.messages) == 2
    assert not fake.edits
    assert titles(fake)[1].endswith("(x 1000)")
    assert stats["emitted"] == 1000
    assert stats["delivered"] + stats["aggregated"] == 1000


def test_shutdown_with_discord_down_keeps_everything(fake: FakeDiscord) -> None:
    """Close while Discord hangs: every record is a dead letter, and the books balance."""
    handler = handler_for(fake, close_timeout=0.3, aggregate_window=0)
    logger = attach(handler)
    fake.set_hang(True)
    for i in range(20):
        logger.error("record %d", i)
    assert not handler.flush(0.2)
    handler.close()
    fake.set_hang(False)
    stats = handler.stats()
    assert stats["emitted"] == 20
    assert stats["delivered"] + stats["aggregated"] + stats["dead_lettered"] == 20
    assert len(handler.dead_letters) == 20


def test_close_twice_and_emit_after_close(fake: FakeDiscord) -> None:
    """close() is idempotent; a record after close is counted, not raised."""
    handler = handler_for(fake)
    logger = attach(handler)
    logger.error("one")
    handler.close()
    handler.close()
    logger.error("after close")
    assert handler.stats()["dropped"] == {"closed": 1}
    assert titles(fake) == ["one"]


def test_library_and_httpx_records_never_reenter(fake: FakeDiscord) -> None:
    """Root at DEBUG with the handler: no httpx, httpcore or library record is sent."""
    handler = handler_for(fake)
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    logging.getLogger("app.real").error("the only alert")
    logging.getLogger("discord_logging.x").error("library chatter")
    logging.getLogger("httpx").info("HTTP Request: POST ...")
    ignore_logger("noisy.lib")
    logging.getLogger("noisy.lib.sub").error("ignored by the application")
    assert handler.flush(FAILSAFE), handler.stats()
    handler.close()
    root.removeHandler(handler)
    assert titles(fake) == ["the only alert"]


def test_thread_start_failure_does_not_raise(
    fake: FakeDiscord, monkeypatch: pytest.MonkeyPatch
) -> None:
    """At interpreter shutdown Thread.start raises; the constructor and emit absorb it and
    the record is counted."""

    def refuse(self: threading.Thread) -> None:
        raise RuntimeError("can't create new thread at interpreter shutdown")

    monkeypatch.setattr(threading.Thread, "start", refuse)
    handler = handler_for(fake)
    logger = attach(handler)
    logger.error("late")
    monkeypatch.undo()
    assert handler.stats()["dropped"] == {"closed": 1}
    handler.close()


def test_stats_are_json_serialisable(fake: FakeDiscord) -> None:
    """handler.stats() survives json.dumps and has the documented counters."""
    handler = handler_for(fake)
    attach(handler).error("x")
    assert handler.flush(FAILSAFE)
    stats = json.loads(json.dumps(handler.stats()))
    handler.close()
    for key in ("emitted", "delivered", "messages_sent", "embeds_per_message", "aggregated"):
        assert key in stats
    assert stats["queue_depth"] == 0


def test_sync_send(fake: FakeDiscord) -> None:
    """handler.send() notifies without logging and returns the outcome."""
    handler = handler_for(fake)
    result = handler.send("general", "deploy finished", "v1.2.3", fields={"env": "prod"})
    handler.close()
    assert result.ok
    assert fake.messages[0].embeds[0]["title"] == "deploy finished"


def test_bad_records_never_raise(fake: FakeDiscord) -> None:
    """Broken %-args and a hostile __str__ never raise into the caller."""
    handler = handler_for(fake)
    logger = attach(handler)

    class Hostile:
        def __str__(self) -> str:
            raise RuntimeError("no")

    logger.error("%d items", "not a number")
    logger.error(Hostile())
    assert handler.flush(FAILSAFE)
    handler.close()
    assert len(titles(fake)) == 2


def test_no_webhook_refuses_to_start() -> None:
    """A handler with no webhook configured refuses to start."""
    with pytest.raises(ConfigurationError, match="DISCORD_WEBHOOK_GENERAL"):
        started_handler()


@pytest.mark.slow  # a real process
@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # fork() with threads, 3.12+
def test_fork_child_delivers_parent_unaffected(fake: FakeDiscord) -> None:
    """After fork the child gets its own worker and delivers; the parent keeps working."""
    handler = handler_for(fake, aggregate_window=0)
    logger = attach(handler)
    logger.error("parent before fork")
    assert handler.flush(FAILSAFE)
    pid = os.fork()
    if pid == 0:  # child
        code = 1
        try:
            logger.error("from the child")
            code = 0 if handler.flush(FAILSAFE) and handler.stats()["delivered"] == 1 else 3
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    logger.error("parent after fork")
    assert handler.flush(FAILSAFE)
    handler.close()
    assert os.waitstatus_to_exitcode(status) == 0
    assert sorted(titles(fake)) == ["from the child", "parent after fork", "parent before fork"]


@pytest.mark.skipif(sys.version_info < (3, 12), reason="queue_handler config is 3.12+")
def test_python312_queue_handler_config(fake: FakeDiscord) -> None:
    """dictConfig's queue_handler with DiscordHandler behind a QueueListener delivers."""
    url = fake.add_webhook()
    logging.config.dictConfig(
        {
            "version": 1,
            "disable_existing_loggers": False,
            "handlers": {
                "discord": {
                    "class": "discord_logging.DiscordHandler",
                    "webhooks": {"general": url},
                    "allowed_hosts": fake.host,
                },
                "queued": {"class": "logging.handlers.QueueHandler", "handlers": ["discord"]},
            },
            "loggers": {"q": {"handlers": ["queued"], "level": "INFO", "propagate": False}},
        }
    )
    queued = logging.getLogger("q").handlers[0]
    listener = queued.listener  # type: ignore[attr-defined]
    listener.start()  # dictConfig creates the listener; the application starts it
    logging.getLogger("q").error("through two queues")
    listener.stop()
    discord = listener.handlers[0]
    assert discord.flush(FAILSAFE)
    discord.close()
    assert titles(fake) == ["through two queues"]


def test_sync_notifier(fake: FakeDiscord) -> None:
    """SyncNotifier sends from sync code without logging and returns the outcome."""
    from discord_logging import SyncNotifier

    with SyncNotifier(webhooks={"general": fake.add_webhook()}, allowed_hosts=fake.host) as n:
        result = n.send("monitoring", "disk 91%", "on /var", fields={"host": "db-1"})
    assert result.ok
    assert fake.messages[0].embeds[0]["title"] == "disk 91%"


def test_fork_parks_the_worker_loop_until_the_fork_is_done(fake: FakeDiscord) -> None:
    """Before a fork the worker's loop is held between callbacks (never inside a store call)
    and runs again once the fork is done. Calls the handler's _before_fork and
    _after_fork_in_parent: they stand in for os.fork's hooks, so that the parent can be
    watched between the two, which no public call allows."""
    handler = handler_for(fake)
    handler.flush(FAILSAFE)
    worker = handler.worker
    assert worker is not None
    ran = threading.Event()

    async def mark() -> None:
        ran.set()

    handler._before_fork()
    try:
        caller = threading.Thread(target=worker.call, args=(mark, FAILSAFE))
        caller.start()
        assert not ran.wait(0.1)  # parked: nothing runs on the loop
    finally:
        handler._after_fork_in_parent()
    assert ran.wait(FAILSAFE)
    caller.join(FAILSAFE)
    handler.close()


@pytest.mark.parametrize(
    ("value", "secret"),
    [
        ("redis://:S3cr/3tPart@localhost:6379/0", "S3cr"),
        ("redis://user:hunter22@localhost:port/0", "hunter22"),
    ],
)
def test_redis_url_redis_py_would_misread_is_refused_at_start_up(value: str, secret: str) -> None:
    """A Redis URL whose password has an unescaped '/', or whose port is not a number, stops
    the handler at start-up, naming the setting and the fix, never the password."""
    with pytest.raises(ConfigurationError, match="redis_url: ") as info:
        started_handler(webhooks={"general": WEBHOOK}, redis_url=value)
    assert "Fix:" in str(info.value)
    assert secret[:4] not in str(info.value)


@pytest.mark.parametrize(
    ("setting", "value", "secret"),
    [
        ("redis_url", "redis://:S3cr3tPart@localhost:6379/0?socket_timeout=soon", "S3cr"),
        ("redis_url", "redis://user:hunter22@localhost:6379/0?health_check_interval=x", "hunter22"),
    ],
)
def test_delivery_that_cannot_start_counts_every_record_and_says_so_once(
    fake: FakeDiscord,
    capfd: pytest.CaptureFixture[str],
    setting: str,
    value: str,
    secret: str,
) -> None:
    """A setting that passes start-up but fails when delivery starts (a Redis URL with an
    option redis-py cannot read) does not swallow records: each is counted as dropped
    (worker_failed), flush() says False, one stderr line names the setting and the fix, and
    no part of the password appears anywhere."""
    handler = DiscordHandler(
        webhooks={"general": fake.add_webhook()}, allowed_hosts=fake.host, **{setting: value}
    )
    log = logging.getLogger("test.cannot_start")
    log.propagate = False
    log.addHandler(handler)
    try:
        for i in range(5):
            log.warning("record %d", i)
        deadline = time.monotonic() + FAILSAFE
        while handler.stats()["dropped"].get("worker_failed", 0) < 5:
            assert time.monotonic() < deadline, handler.stats()
            time.sleep(0.01)
        assert handler.flush(1.0) is False
    finally:
        log.removeHandler(handler)
        handler.close()
    stats = handler.stats()
    assert stats["dropped"] == {"worker_failed": 5}
    assert fake.messages == []
    err = capfd.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("discord-logging")]
    assert len(lines) == 1, err
    assert "DISCORD_REDIS_URL" in lines[0]
    assert "percent-encode" in lines[0]
    assert secret not in err
    assert secret[:4] not in err


def test_a_certificate_file_without_certificates_counts_records_and_names_the_setting(
    fake: FakeDiscord,
    capfd: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """SSL_CERT_FILE naming a file that exists but holds no certificate (start-up only checks
    that it can be opened; a missing one is refused there): delivery cannot start; records
    are counted as dropped and one stderr line names SSL_CERT_FILE."""
    junk = tmp_path / "ca.pem"
    junk.write_text("not a certificate\n")
    monkeypatch.setenv("SSL_CERT_FILE", str(junk))
    handler = DiscordHandler(webhooks={"general": fake.add_webhook()}, allowed_hosts=fake.host)
    log = logging.getLogger("test.cannot_start_tls")
    log.propagate = False
    log.addHandler(handler)
    try:
        log.warning("one record")
        deadline = time.monotonic() + FAILSAFE
        while not handler.stats()["dropped"]:
            assert time.monotonic() < deadline
            time.sleep(0.01)
    finally:
        log.removeHandler(handler)
        handler.close()
    assert handler.stats()["dropped"] == {"worker_failed": 1}
    err = capfd.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("discord-logging")]
    assert len(lines) == 1, err
    assert "SSL_CERT_FILE" in lines[0]


@pytest.mark.parametrize("keeper", ["memory sink", "unusable store"])
def test_limits_are_shared_through_the_store_directory_whatever_keeps_the_letters(
    fake: FakeDiscord, tmp_path: Path, keeper: str, capfd: pytest.CaptureFixture[str]
) -> None:
    """With a custom MemoryDeadLetters sink, or a store that cannot be used, the handler still
    counts in the limits the host's processes share (the store directory), and where that
    directory cannot be used either it keeps to DISCORD_RATE_LIMIT // DISCORD_FLEET_SIZE, never
    the whole limit beside the others."""
    from discord_logging import MemoryDeadLetters

    options: dict[str, Any] = {"store_path": str(tmp_path / "store")}
    if keeper == "memory sink":
        options["dead_letters"] = MemoryDeadLetters()
    else:
        blocker = tmp_path / "file"
        blocker.write_text("x")
        options["store_path"] = str(blocker / "store")
    handler = DiscordHandler(
        webhooks={"general": fake.add_webhook()}, allowed_hosts=fake.host, **options
    )
    log = logging.getLogger(f"test.limits.{keeper}")
    log.propagate = False
    log.addHandler(handler)
    try:
        log.warning("one")
        handler.flush(FAILSAFE)
    finally:
        log.removeHandler(handler)
        handler.close()
    coordination = handler.stats()["coordination"]
    assert coordination["backend"] == "host"
    assert len(fake.messages) == 1
    if keeper == "unusable store":
        assert coordination["fallbacks"] >= 1
        assert "keeps to 7 messages per 60 s" in capfd.readouterr().err
