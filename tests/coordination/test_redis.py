"""The Redis backend against a real ``redis-server``, and what happens when it goes away."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

import pytest
from redis_server import RedisServer, free_port

from discord_logging.coordination import Grant, open_coordinator
from discord_logging.coordination.incidents import IncidentState
from discord_logging.coordination.ledger import Limits
from discord_logging.coordination.redis import RedisCoordinator, redacted_url
from discord_logging.transport.headers import RateLimitHeaders

from .conftest import SMALL, run_workers
from .test_sharing import worst_span

pytestmark = pytest.mark.slow  # fleets of real processes, a real redis-server


def coordinator(url: str, **kwargs: object) -> RedisCoordinator:
    kwargs.setdefault("stderr", io.StringIO())
    return RedisCoordinator(url, SMALL, **kwargs)  # type: ignore[arg-type]


async def test_two_processes_share_the_channel_window(redis_server: RedisServer) -> None:
    """Slots taken by two coordinators add up: the 4th of 3 per 10 s waits, on either."""
    a, b = coordinator(redis_server.url), coordinator(redis_server.url)
    grants = []
    for c in (a, b, a):
        got = await c.acquire("channel:1", "w1" if c is a else "w2")
        assert isinstance(got, Grant)
        assert not got.local
        await c.complete(got, RateLimitHeaders(limit=5, remaining=4, reset_after=2.0))
        grants.append(got)
    wait = await b.acquire("channel:1", "w2")
    assert isinstance(wait, float)
    assert 9.0 < wait <= 10.0
    assert isinstance(await b.acquire("channel:2", "w2"), Grant)  # another channel
    await a.give_back(grants[0])
    assert isinstance(await b.acquire("channel:1", "w2"), Grant)  # the given back slot
    assert a.stats.backend_errors == b.stats.backend_errors == 0
    await a.aclose()
    await b.aclose()


async def test_holds_and_bans_reach_every_host(redis_server: RedisServer) -> None:
    """A per-webhook 429 and a Cloudflare ban read by one process hold back the other."""
    a, b = coordinator(redis_server.url), coordinator(redis_server.url)
    await a.block_webhook("w1", 5.0)
    wait = await b.acquire("channel:1", "w1")
    assert isinstance(wait, float)
    assert 4.0 < wait <= 5.0
    await b.pause_all(300.0)
    wait = await a.acquire("channel:9", "w9")
    assert isinstance(wait, float)
    assert 299.0 < wait <= 300.0
    await a.aclose()
    await b.aclose()


async def test_redis_stopping_mid_run_falls_back_and_loses_nothing(
    redis_server: RedisServer,
) -> None:
    """Redis goes away: slots come from the local share (counted, said once on stderr, never
    an exception); Redis back, Redis again."""
    stderr = io.StringIO()
    c = coordinator(redis_server.url, stderr=stderr, retry_interval=0.0, fleet_size=3)
    before = await c.acquire("channel:1", "w1")
    assert isinstance(before, Grant)
    assert not before.local
    redis_server.stop()
    await c.complete(before, RateLimitHeaders(limit=5, remaining=4, reset_after=2.0))
    got = await c.acquire("channel:1", "w1")
    assert isinstance(got, Grant)
    assert got.local
    await c.complete(got, RateLimitHeaders(limit=5, remaining=4, reset_after=2.0))
    # The local share is SMALL's 3 // 3 = 1 per 10 s: the next waits, it is not refused.
    wait = await c.acquire("channel:1", "w1")
    assert isinstance(wait, float)
    assert wait > 9.0
    await c.pause_all(1.0)
    assert not c.reachable
    assert c.stats.fallbacks == 1
    assert c.stats.fallback_grants == 1
    assert c.stats.backend_errors >= 3
    said = stderr.getvalue()
    assert said.count("\n") == 1
    assert "Redis at redis://127.0.0.1" in said
    assert "DISCORD_FLEET_SIZE=3" in said
    redis_server.start()
    back = await c.acquire("channel:2", "w2")
    assert isinstance(back, Grant)
    assert not back.local
    assert c.reachable
    await c.give_back(back)
    assert stderr.getvalue() == said  # said once
    await c.aclose()


async def test_unreachable_from_the_start() -> None:
    """A URL nobody answers: every slot from the local share, no exception, said once."""
    stderr = io.StringIO()
    c = coordinator(f"redis://:secret@127.0.0.1:{free_port()}/0", stderr=stderr)
    got = await c.acquire("channel:1", "w1")
    assert isinstance(got, Grant)
    assert got.local
    await c.complete(got, None)
    await c.block_webhook("w1", 1.0)
    assert "secret" not in stderr.getvalue()
    assert stderr.getvalue().count("\n") == 1
    await c.aclose()


def test_open_coordinator_takes_redis_over_the_store(tmp_path: Path) -> None:
    """``redis_url`` wins over the store directory: the fleet spans hosts."""
    c = open_coordinator(Limits(), store_dir=tmp_path, redis_url="redis://127.0.0.1:1/0")
    assert isinstance(c, RedisCoordinator)
    asyncio.run(c.aclose())


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://:pw@cache:6380/2", "redis://cache:6380/2"),
        ("rediss://user:pw@cache/0", "rediss://cache/0"),
        ("redis://127.0.0.1", "redis://127.0.0.1"),
    ],
)
def test_redis_url_is_shown_without_credentials(url: str, shown: str) -> None:
    """Messages name the Redis server, never its password."""
    assert redacted_url(url) == shown


def test_four_processes_on_redis_never_exceed_the_window(redis_server: RedisServer) -> None:
    """4 real processes x 4 slots on 5 per 0.5 s through Redis: no span holds more than 5."""
    intervals = run_workers("redis", redis_server.url, processes=4, slots=4, limit=5, window=0.5)
    assert len(intervals) == 16
    assert worst_span(intervals, 0.5) <= 5


async def test_a_look_at_an_incident_writes_nothing(redis_server: RedisServer) -> None:
    """``peek_incidents`` on Redis reads in one round trip and writes nothing: a problem no
    holder has shown yet leaves no key behind (a holder whose lane is full decides to keep
    its record so, docs/architecture.md, "A record the lane cannot take now takes no
    claim"), and what the decision changed stays on its copy."""
    host = coordinator(redis_server.url)

    def bump(state: IncidentState, now: float, gone: object) -> int:
        state.shown += 1
        return state.shown

    assert await host.peek_incidents([("webhook::new-problem", bump)]) == [1]
    assert await host._client.exists(f"{host.prefix}:incident:webhook::new-problem") == 0
    assert await host.incident("webhook::old-problem", bump) == 1
    assert await host.peek_incidents([("webhook::old-problem", bump)]) == [2]  # on a copy
    looks = [("webhook::old-problem", bump), ("webhook::new-problem", bump)]
    assert await host.peek_incidents(looks) == [2, 1]  # many on one read, each on a copy
    assert await host._client.exists(f"{host.prefix}:incident:webhook::new-problem") == 0
    assert await host.incident("webhook::old-problem", bump) == 2
    await host.aclose()
