"""The delivery engine on the coordination layer: one lane per webhook, channel discovery,
limits and dead-letter claims shared by real processes (one store directory, one Redis)."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import re
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest
from letterkit import destination_of
from redis_server import RedisServer
from waiting import FAILSAFE

from discord_logging import Notifier
from discord_logging.capture.direct import build_notification
from discord_logging.cli.channel_report import describe_channels, lookup_channels
from discord_logging.coordination.ledger import Limits
from discord_logging.coordination.redis import RedisCoordinator
from discord_logging.deadletters import DeadLetter, DeadLetterReason
from discord_logging.errors import ConfigurationError
from discord_logging.notification import DeliveryStatus
from discord_logging.settings import load_settings
from discord_logging.store import Store
from discord_logging.testing import FakeDiscord
from discord_logging.transport.channels import FIRST_RETRY

pytestmark = pytest.mark.slow  # fleets of real processes, a real redis-server

FLEET_WORKER = Path(__file__).with_name("fleet_worker.py")
RECORD = re.compile(r"\bp\d+ record \d+\b")
FAST = {"circuit_reset": 0.3, "probe_interval": 0.2, "retry_deadline": 30.0}


def run_fleet(configs: list[dict[str, Any]], *, timeout: float = 60) -> list[dict[str, Any]]:
    """Start one worker process per config at once; wait for all; return their stats."""
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    workers = [
        subprocess.Popen(
            [sys.executable, str(FLEET_WORKER), json.dumps(config)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for config in configs
    ]
    stats = []
    for worker in workers:
        out, err = worker.communicate(timeout=timeout)
        assert worker.returncode == 0, err
        stats.append({**json.loads(out.strip().splitlines()[-1]), "stderr": err})
    return stats


def records_received(fake: FakeDiscord) -> Counter[str]:
    """How many messages carried each record (``p<process> record <i>``): a record counted
    twice was posted twice. A record's text may show twice in one message (title and body):
    it counts once per message."""
    seen: Counter[str] = Counter()
    for message in fake.messages:
        seen.update(set(RECORD.findall(json.dumps(message.payload))))
    return seen


def expected(processes: int, count: int) -> set[str]:
    return {f"p{p} record {i}" for p in range(processes) for i in range(count)}


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class FailingLookups(httpx.AsyncBaseTransport):
    """Loopback transport whose GETs (the channel lookups) fail while ``failing`` is set."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.failing = True
        self.gets = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.method == "GET":
            self.gets += 1
            if self.failing:
                raise httpx.ConnectError("lookup refused", request=request)
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


def notifier(fake: FakeDiscord, webhooks: dict[str, str], **options: Any) -> Notifier:
    return Notifier(webhooks=webhooks, allowed_hosts=fake.host, rand=lambda: 0.0, **FAST, **options)


async def until(condition: Any, seconds: float = FAILSAFE) -> None:
    for _ in range(int(seconds / 0.01)):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not met in time")


# -- one lane per webhook ----------------------------------------------------------------------


async def test_one_url_for_two_alert_types_is_one_lane(fake_discord: FakeDiscord) -> None:
    """Two alert types configured with one URL share one lane (its limits counted once), and
    it redelivers letters stored under either name."""
    url = fake_discord.add_webhook()
    n = notifier(
        fake_discord, {"general": url, "error": url, "critical": fake_discord.add_webhook()}
    )
    n.start()
    assert n.lanes["general"] is n.lanes["error"]
    assert n.lanes["critical"] is not n.lanes["general"]
    assert n.lanes["error"].names == ("general", "error")
    a = await asyncio.wait_for(n.send("general", "a"), FAILSAFE)
    b = await asyncio.wait_for(n.send("error", "b"), FAILSAFE)
    await n.aclose()
    assert a.ok
    assert b.ok
    assert n.queue_depth() == 0


async def test_a_shared_lane_redelivers_letters_kept_under_each_name(
    fake_discord: FakeDiscord, tmp_path: Path
) -> None:
    """A letter the second alert type of a shared webhook kept goes out through the shared
    lane: letters are kept under the webhook's identity, whichever name kept them."""
    url = fake_discord.add_webhook()
    store = Store(tmp_path / "store")
    kept = build_notification("error", "kept under error")
    # Kept a minute ago: a letter of 1970 would be the writer's first retention purge.
    store.dead_letters.add(
        DeadLetter(
            kept,
            webhook="error",
            reason=DeadLetterReason.SHUTDOWN,
            dead_at=time.time() - 60,
            destination=destination_of(url),
        )
    )
    store.dead_letters.sync()
    n = notifier(fake_discord, {"general": url, "error": url}, dead_letters=store.dead_letters)
    n.start()
    await until(lambda: len(fake_discord.messages) == 1)
    await n.aclose()
    store.close()
    assert "kept under error" in json.dumps(fake_discord.messages[0].payload)


# -- channel discovery -------------------------------------------------------------------------


async def test_the_channel_is_learned_after_the_first_delivery(fake_discord: FakeDiscord) -> None:
    """The worker asks Discord (GET, posts nothing) which channel the webhook posts into; its
    window is then keyed by that channel."""
    url = fake_discord.add_webhook(channel_id=777)
    webhook_id = url.split("/")[-2]
    n = notifier(fake_discord, {"general": url})
    assert (await asyncio.wait_for(n.send("general", "a"), FAILSAFE)).ok
    shared = n.lanes["general"].shared
    await until(lambda: shared.channels.channel(webhook_id) is not None)
    await n.aclose()
    assert shared.channels.key(webhook_id) == "channel:777"
    gets = [r for r in fake_discord.requests if r.method == "GET"]
    assert len(gets) == 1
    assert len(fake_discord.messages) == 1


async def test_a_failed_lookup_leaves_the_webhook_id_standing_in_and_is_retried_later(
    fake_discord: FakeDiscord,
) -> None:
    """While the GET fails the webhook id keys the window and delivery goes on; the lookup is
    asked again only after its retry interval (injected clock), then the channel is known."""
    url = fake_discord.add_webhook(channel_id=555)
    webhook_id = url.split("/")[-2]
    clock = Clock()
    transport = FailingLookups()
    n = notifier(fake_discord, {"general": url}, transport=transport, clock=clock)
    n.start()
    shared = n.lanes["general"].shared
    for i in range(3):
        assert (await asyncio.wait_for(n.send("general", f"r{i}"), FAILSAFE)).ok
    await until(lambda: transport.gets == 1)
    await asyncio.sleep(0.05)
    assert transport.gets == 1  # not asked again before the retry interval
    assert shared.channels.key(webhook_id) == f"webhook:{webhook_id}"
    transport.failing = False
    clock.now += FIRST_RETRY + 1
    assert (await asyncio.wait_for(n.send("general", "later"), FAILSAFE)).ok
    await until(lambda: shared.channels.channel(webhook_id) is not None)
    await n.aclose()
    assert transport.gets == 2
    assert shared.channels.key(webhook_id) == "channel:555"


async def test_two_webhooks_in_one_channel_share_its_window_in_one_process() -> None:
    """Two webhooks posting into one channel from one process earn no hidden-limit 429: once
    their channel is known they count in one window."""
    with FakeDiscord(channel_limit=3, channel_window=0.6, webhook_limit=50) as fake:
        first = fake.add_webhook(channel_id=42)
        second = fake.add_webhook(channel_id=42)
        n = notifier(fake, {"general": first, "error": second}, rate_limit=3, channel_window=0.6)
        n.start()
        shared = n.lanes["general"].shared  # every lane's
        # Learn both channels first (the stand-in windows are per webhook until then).
        assert (await asyncio.wait_for(n.send("general", "warm 1"), FAILSAFE)).ok
        assert (await asyncio.wait_for(n.send("error", "warm 2"), FAILSAFE)).ok
        await until(lambda: len(shared.channels.sharing()) == 1)
        results = await asyncio.wait_for(
            asyncio.gather(*(n.send(("general", "error")[i % 2], f"r{i}") for i in range(10))),
            20,
        )
        await n.aclose()
        assert all(r.ok for r in results)
        assert fake.rate_limited_by_scope()["shared"] == 0
        assert fake.count_status(429) == 0
        assert max(fake.peak_per_channel(0.6).values()) <= 3


# -- real processes ----------------------------------------------------------------------------


def fleet_config(
    fake: FakeDiscord, url: str, store: Path, process: int, **more: Any
) -> dict[str, Any]:
    return {
        "webhooks": {"general": url},
        "host": fake.host,
        "store": str(store),
        "prefix": f"p{process}",
        "count": 40,
        "bursts": 8,
        "rate_limit": 3,
        "channel_window": 1.0,
        **more,
    }


def test_four_processes_sharing_a_store_directory_stay_inside_the_limits(tmp_path: Path) -> None:
    """4 processes on one store directory, each with more messages than a fourth of the
    channel's window, together earn no 429, post nothing twice and lose nothing."""
    with FakeDiscord(channel_limit=3, channel_window=1.0) as fake:
        url = fake.add_webhook()
        store = tmp_path / "shared-store"
        stats = run_fleet([fleet_config(fake, url, store, p) for p in range(4)])
        seen = records_received(fake)
        assert fake.count_status(429) == 0
        assert max(seen.values()) == 1  # nothing twice
        assert set(seen) == expected(4, 40)  # nothing lost
        assert max(fake.peak_per_channel(1.0).values()) <= 3
        # More than one window holds, so the limit was really reached (a loaded machine packs
        # the bursts into fewer, larger messages: 4 were seen, hence not "> 4").
        assert sum(s["messages_sent"] for s in stats) > 3
        assert all(s["coordination"]["backend"] == "host" for s in stats)


def test_redis_shares_limits_across_processes(tmp_path: Path, redis_server: RedisServer) -> None:
    """With DISCORD_REDIS_URL, processes with different store directories (as on different
    hosts) share the limits on Redis: no 429, nothing twice, nothing lost."""
    with FakeDiscord(channel_limit=3, channel_window=1.0) as fake:
        url = fake.add_webhook()
        configs = [
            fleet_config(fake, url, tmp_path / f"host-{p}", p, redis_url=redis_server.url)
            for p in range(4)
        ]
        stats = run_fleet(configs)
        seen = records_received(fake)
        assert fake.count_status(429) == 0
        assert max(seen.values()) == 1
        assert set(seen) == expected(4, 40)
        assert all(s["coordination"]["backend"] == "redis" for s in stats)
        assert all(s["coordination"]["backend_errors"] == 0 for s in stats)


def keep_letters(store_dir: Path, url: str, count: int) -> None:
    """``count`` letters an earlier run kept for the webhook ``url``."""
    store = Store(store_dir)
    kept_at = time.time() - 60  # recent: retention purges letters older than 30 days
    for i in range(count):
        note = build_notification("general", f"p0 record {i}")
        store.dead_letters.add(
            DeadLetter(
                note,
                webhook="general",
                reason=DeadLetterReason.SHUTDOWN,
                attempts=0,
                dead_at=kept_at + i * 0.001,
                destination=destination_of(url),
            )
        )
    store.dead_letters.sync()
    store.close()


@pytest.mark.parametrize("backend", ["host", "redis"])
def test_eight_processes_redelivering_from_one_store_post_nothing_twice(
    tmp_path: Path, backend: str, request: pytest.FixtureRequest
) -> None:
    """Letters left in one store by an earlier run are redelivered by 8 processes started
    together: each letter exactly once (the store's claims; with Redis, the fleet's too)."""
    more: dict[str, Any] = {"count": 0, "redeliver_only": True, "linger": 0.5, "rate_limit": 30}
    if backend == "redis":
        more["redis_url"] = request.getfixturevalue("redis_server").url
    store = tmp_path / "store"
    with FakeDiscord() as fake:
        url = fake.add_webhook()
        keep_letters(store, url, 60)
        stats = run_fleet([fleet_config(fake, url, store, p, **more) for p in range(8)])
        seen = records_received(fake)
        assert max(seen.values()) == 1
        assert set(seen) == expected(1, 60)
        assert sum(s["redelivered"] for s in stats) == 60
        assert fake.count_status(429) == 0


async def test_redis_stopping_mid_run_loses_nothing(
    tmp_path: Path, redis_server: RedisServer, capfd: pytest.CaptureFixture[str]
) -> None:
    """Redis going away mid-run: every record is still delivered or kept, the fallback is
    counted, and said once on stderr (without the password)."""
    with FakeDiscord(channel_limit=30, channel_window=1.0) as fake:
        url = fake.add_webhook()
        secret_url = redis_server.url.replace("redis://", "redis://:s3cret@")
        n = notifier(fake, {"general": url}, redis_url=secret_url, fleet_size=2)
        before = [n.send("general", f"p0 record {i}") for i in range(5)]
        assert all(r.ok for r in await asyncio.wait_for(asyncio.gather(*before), FAILSAFE))
        redis_server.stop()
        after = [n.send("general", f"p0 record {i}") for i in range(5, 15)]
        results = await asyncio.wait_for(asyncio.gather(*after), FAILSAFE)
        await n.aclose()
        delivered = sum(r.status is DeliveryStatus.DELIVERED for r in results)
        kept = len(n.dead_letters.letters())
        assert delivered + kept == 10
        stats = n.stats.snapshot()["coordination"]
        assert stats["backend"] == "redis"
        assert stats["fallbacks"] >= 1
        assert stats["backend_errors"] >= 1
        err = capfd.readouterr().err
        assert err.count("cannot be used") == 1
        assert "s3cret" not in err
        assert set(records_received(fake)) <= expected(1, 15)


# -- settings ----------------------------------------------------------------------------------


def test_a_bad_redis_url_is_refused_without_showing_it(fake_discord: FakeDiscord) -> None:
    """DISCORD_REDIS_URL is a secret: a bad one is refused naming the setting, never the value."""
    with pytest.raises(ConfigurationError) as caught:
        notifier(fake_discord, {"general": fake_discord.add_webhook()}, redis_url="http://:pw@x")
    assert "redis_url: " in str(caught.value)  # named as given: the keyword
    assert "pw" not in str(caught.value)


def test_redis_url_without_redis_py_fails_at_start_up_with_the_fix(
    fake_discord: FakeDiscord, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With DISCORD_REDIS_URL set but redis-py missing, start-up says to install the extra."""
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "redis" else real(name, *a)
    )
    with pytest.raises(ConfigurationError, match=r"discord-alert-logging\[redis\]"):
        notifier(fake_discord, {"general": fake_discord.add_webhook()}, redis_url="redis://x:1/0")


# -- check: which channel each alert type lands in ---------------------------------------------


async def test_channel_report_names_each_channel_and_the_shared_ones(
    fake_discord: FakeDiscord,
) -> None:
    """One GET per distinct webhook (nothing posted); alert types landing in one channel are
    reported together; a thread is its own channel; a missing webhook says why."""
    shared = fake_discord.add_webhook(channel_id=11)
    gone = fake_discord.add_webhook(channel_id=12)
    fake_discord.delete_webhook(gone.split("/")[-2])
    webhooks = {
        "general": shared,
        "error": shared,
        "security": fake_discord.add_webhook(channel_id=11),
        "tracklist": shared + "?thread_id=99",
        "monitoring": gone,
    }
    urls = load_settings(webhooks=webhooks, allowed_hosts=fake_discord.host).webhook_urls
    report = describe_channels(await lookup_channels(urls, timeout=5))
    assert report["shared_channels"] == [
        {"channel_id": "11", "alert_types": ["error", "general", "security"]}
    ]
    assert report["webhooks"]["tracklist"]["channel_id"] == "99"
    assert "error" in report["webhooks"]["monitoring"]
    assert fake_discord.messages == []
    assert len(fake_discord.requests) == 4  # general and error share one URL: asked once


async def test_letters_still_queued_at_close_are_left_claimable_by_the_fleet(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    """A process that took kept letters back (claimed in the store) and closes before
    sending them stores them again and gives up their claims: another process (here, with
    Redis sharing the limits) can claim them at once, not after the 120 s lease."""
    store_dir = tmp_path / "store"
    held = RedisCoordinator(redis_server.url, Limits())
    with FakeDiscord() as fake:
        url = fake.add_webhook()
        keep_letters(store_dir, url, 5)
        store = Store(store_dir)
        await held.block_webhook(url.rstrip("/").split("/")[-2], 60.0)  # nothing goes out
        n = notifier(
            fake, {"general": url}, redis_url=redis_server.url, dead_letters=store.dead_letters
        )
        n.start()
        lane = n.lanes["general"]
        await until(lambda: len(lane.queue) == 5)  # taken back, claimed in the store
        await n.aclose(0.0)
        assert fake.messages == []
    letters = store.dead_letters.letters()
    assert len(letters) == 5  # kept again
    store.close()
    await held.aclose()
    claim_all = (
        "from discord_logging.store import Store\n"
        f"store = Store({str(store_dir)!r})\n"
        "print(sum(store.durable.claim(x.id) is not None for x in store.durable.letters()))\n"
        "store.close()\n"
    )
    other = subprocess.run(
        [sys.executable, "-c", claim_all], capture_output=True, text=True, timeout=60, check=True
    )
    assert other.stdout.strip() == "5"
