"""The one-host backend: real processes sharing one store directory."""

from __future__ import annotations

import io
import json
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from discord_logging.coordination import Coordinator, Grant, ledger, open_coordinator
from discord_logging.coordination.host import FILE_NAME, HostCoordinator
from discord_logging.coordination.incidents import IncidentState
from discord_logging.coordination.local import LocalCoordinator
from discord_logging.coordination.redis import RedisCoordinator
from discord_logging.transport.headers import RateLimitHeaders

from .conftest import SMALL, run_workers
from .test_sharing import worst_span


def coordinator_pair(
    backend: str, tmp_path: Path, now: list[float]
) -> tuple[Coordinator, Coordinator]:
    """Two processes' coordinators on one store directory ("host"), or one in-process
    coordinator serving as both ("local"), on the clock ``now[0]``."""
    if backend == "host":
        return (
            HostCoordinator(tmp_path, SMALL, clock=lambda: now[0]),
            HostCoordinator(tmp_path, SMALL, clock=lambda: now[0]),
        )
    local = LocalCoordinator(SMALL, clock=lambda: now[0])
    return local, local


async def free_places(coordinator: Coordinator, channel: str) -> int:
    """How many more slots ``channel``'s window takes now, read through the backend's one
    atomic step (private: the library itself only asks for its plain room)."""

    def free(states: list[ledger.State], now: float) -> int:
        (window,) = states
        assert isinstance(window, ledger.WindowState)
        window.expire(SMALL.channel_window, now)
        return SMALL.channel_limit - len(window.stamps)

    return await coordinator._transact((f"window:{channel}",), free)


OPENING_RACE = Path(__file__).with_name("opening_race.py")


@pytest.mark.slow  # real processes
def test_processes_opening_a_new_store_together_wait_for_each_other(tmp_path: Path) -> None:
    """50 rounds of 4 forked processes opening one new limits store at the same moment: none
    takes the lock of a neighbour setting the file up (SQLite's WAL switch answers "database is
    locked" at once) for an outage; nothing falls back, nothing is said on stderr. Before the
    opening waited as a transaction does, about 1 opening in 50 fell back."""
    done = subprocess.run(
        [sys.executable, str(OPENING_RACE), str(tmp_path), "50", "4"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"fallbacks": 0, "errors": []}
    assert done.stderr == ""


async def test_a_lock_held_while_the_store_is_opened_is_waited_for(tmp_path: Path) -> None:
    """Another connection holds the new database's lock when this process opens it (the WAL
    switch needs it): the slot waits for it on the loop and comes from the shared store."""
    import asyncio
    import sqlite3

    path = tmp_path / "limits" / FILE_NAME
    path.parent.mkdir(mode=0o700)
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")
    asyncio.get_running_loop().call_later(0.05, other.execute, "COMMIT")
    c = HostCoordinator(tmp_path, SMALL, stderr=io.StringIO())
    got = await c.acquire("channel:1", "w")
    other.close()
    assert isinstance(got, Grant)
    assert not got.local
    assert c.stats.fallbacks == 0
    await c.aclose()


@pytest.mark.slow  # a real process
def test_four_processes_never_exceed_the_shared_window(tmp_path: Path) -> None:
    """4 processes x 4 slots on a window of 5 per 0.5 s: no span holds more than 5, although
    each process alone would have sent its 4 at once (16 in the first span)."""
    intervals = run_workers("host", str(tmp_path), processes=4, slots=4, limit=5, window=0.5)
    assert len(intervals) == 16
    assert worst_span(intervals, 0.5) <= 5


async def test_store_lives_under_limits_and_is_private(tmp_path: Path) -> None:
    """``<store>/limits/limits.sqlite3``, in a directory only the owner can read."""
    coordinator = open_coordinator(SMALL, store_dir=tmp_path / "store")
    assert isinstance(coordinator, HostCoordinator)
    got = await coordinator.acquire("channel:1", "1")
    assert isinstance(got, Grant)
    await coordinator.aclose()
    assert (tmp_path / "store" / "limits" / FILE_NAME).exists()
    assert (tmp_path / "store" / "limits").stat().st_mode & 0o077 == 0


def test_without_store_or_redis_the_limits_stay_in_process() -> None:
    """No store directory and no Redis URL: the in-process backend, no file anywhere."""
    assert isinstance(open_coordinator(SMALL), LocalCoordinator)


@pytest.mark.parametrize("backend", ["local", "host"])
async def test_bucket_headers_and_holds_reach_every_process(backend: str, tmp_path: Path) -> None:
    """One process reads Remaining 0 / a 429 / a ban: the other holds back as well."""
    now = [100.0]
    first, second = coordinator_pair(backend, tmp_path, now)
    got = await first.acquire("channel:1", "7")
    assert isinstance(got, Grant)
    await first.complete(got, RateLimitHeaders(limit=5, remaining=0, reset_after=2.0))
    assert await second.acquire("channel:1", "7") == pytest.approx(2.0)
    assert isinstance(await second.acquire("channel:1", "8"), Grant)  # another webhook
    now[0] += 2.0
    await second.block_webhook("7", 3.0)
    assert await first.acquire("channel:2", "7") == pytest.approx(3.0)
    await first.pause_all(300.0)
    assert await second.acquire("channel:3", "9") == pytest.approx(300.0)
    await first.aclose()
    await second.aclose()


async def test_an_unusable_store_falls_back_to_the_local_share(tmp_path: Path) -> None:
    """The store path is a file: slots come from the local share, counted, said once."""
    import io

    blocked = tmp_path / "not-a-directory"
    blocked.write_text("")
    stderr = io.StringIO()
    c = HostCoordinator(blocked, SMALL, fleet_size=3, stderr=stderr, retry_interval=0.0)
    got = await c.acquire("channel:1", "w")
    assert isinstance(got, Grant)
    assert got.local
    await c.complete(got, None)
    assert isinstance(await c.acquire("channel:1", "w"), float)  # 3 // 3 = 1 per 10 s
    await c.pause_all(1.0)
    assert c.stats.fallbacks == 1
    assert c.stats.backend_errors >= 3
    assert stderr.getvalue().count("\n") == 1
    assert "the limits store" in stderr.getvalue()
    await c.aclose()


async def test_a_held_lock_is_waited_for_then_left_to_the_fallback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another process holds the write lock: a slot waits for it on the loop; held past the
    lock timeout, the slot comes from the local share instead of raising."""
    import asyncio
    import io
    import sqlite3

    from discord_logging.coordination import host

    monkeypatch.setattr(host, "_BUSY_TIMEOUT_MS", 300)
    c = HostCoordinator(tmp_path, SMALL, stderr=io.StringIO())
    await c.give_back(Grant("none", "channel:1", "w"))  # creates the database
    other = sqlite3.connect(c.path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    loop = asyncio.get_running_loop()
    loop.call_later(0.05, other.execute, "COMMIT")
    got = await c.acquire("channel:1", "w")
    assert isinstance(got, Grant)
    assert not got.local
    other.execute("BEGIN IMMEDIATE")
    got = await c.acquire("channel:1", "w2")
    other.execute("COMMIT")
    other.close()
    assert isinstance(got, Grant)
    assert got.local
    assert c.stats.fallbacks == 1
    await c.aclose()


async def test_a_row_that_is_not_ours_counts_as_empty(tmp_path: Path) -> None:
    """A corrupt or planted row does not stop delivery: it is read as an empty state."""
    import sqlite3

    c = HostCoordinator(tmp_path, SMALL)
    await c.give_back(Grant("none", "channel:1", "w"))
    with sqlite3.connect(c.path) as db:
        db.execute("UPDATE state SET value = 'not json' WHERE key = 'window:channel:1'")
        db.execute("UPDATE state SET value = '[1, 2]' WHERE key = 'bucket:w'")
    db.close()
    got = await c.acquire("channel:1", "w")
    assert isinstance(got, Grant)
    assert not got.local
    assert c.stats.backend_errors == 0
    await c.aclose()


@pytest.mark.slow  # a real process
@pytest.mark.parametrize("backend", ["host", "redis"])
async def test_a_channel_learned_by_one_process_counts_for_those_that_have_not(
    tmp_path: Path, backend: str, request: pytest.FixtureRequest
) -> None:
    """Two webhooks in one channel: once one process has learned the second webhook's
    channel, another that has not (it still asks under the webhook id) counts in the
    channel's window, which the first webhook has filled, and waits instead of earning
    Discord's hidden-limit 429."""
    if backend == "redis":
        url = request.getfixturevalue("redis_server").url
        learner, other = (RedisCoordinator(url, SMALL, stderr=io.StringIO()) for _ in range(2))
    else:
        learner, other = (HostCoordinator(tmp_path, SMALL, clock=time.time) for _ in range(2))
    await learner.merge_window("webhook:w2", "channel:c")  # learned: w2 posts into c
    for _ in range(SMALL.channel_limit):  # w1, known to be in c too, fills the window
        got = await learner.acquire("channel:c", "w1")
        assert isinstance(got, Grant)
        await learner.complete(got, RateLimitHeaders(limit=5, remaining=4, reset_after=2.0))
    wait = await other.acquire("webhook:w2", "w2")
    assert isinstance(wait, float)
    assert wait > SMALL.channel_window - 1
    await learner.aclose()
    await other.aclose()


@pytest.mark.parametrize("backend", ["local", "host"])
async def test_edits_bucket_reserve_and_room(backend: str, tmp_path: Path) -> None:
    """A route's own bucket (edits) is held apart from the webhook's; a reserve keeps places
    of the channel's window free; the window's free places are the same for every process
    sharing it."""
    now = [100.0]
    first, second = coordinator_pair(backend, tmp_path, now)
    assert await free_places(second, "channel:1") == 3
    post = await first.acquire("channel:1", "7")
    assert isinstance(post, Grant)
    await first.complete(post, RateLimitHeaders(limit=5, remaining=0, reset_after=2.0))
    edit = await second.acquire("channel:1", "7", bucket="7:messages", reserve=1)
    assert isinstance(edit, Grant)  # posting's bucket is empty, the edits' is not
    assert edit.bucket == "7:messages"
    assert await free_places(second, "channel:1") == 1
    assert isinstance(await first.acquire("channel:1", "7", bucket="7:messages", reserve=1), float)
    await second.block_webhook("7:messages", 5.0)
    await second.complete(edit, None)
    assert await first.acquire("channel:2", "7", bucket="7:messages") == pytest.approx(5.0)
    assert await first.acquire("channel:2", "7") == pytest.approx(2.0)  # posting's own hold
    now[0] += 10.0
    assert await free_places(first, "channel:1") == 3
    spare = await first.acquire("channel:1", "7", bucket="7:messages")
    assert isinstance(spare, Grant)
    await first.give_back(spare)
    assert await free_places(first, "channel:1") == 3
    await first.aclose()
    await second.aclose()


async def test_room_falls_back_to_the_local_share(tmp_path: Path) -> None:
    """With the store unusable, plain_room() is answered from the local share."""
    blocked = tmp_path / "not-a-directory"
    blocked.write_text("")
    c = HostCoordinator(blocked, SMALL, fleet_size=3, stderr=io.StringIO(), retry_interval=0.0)
    assert await c.plain_room("channel:1", "w") == 1  # 3 // 3
    await c.aclose()


@pytest.mark.parametrize("backend", ["local", "host"])
async def test_plain_room_leaves_what_other_holders_said_they_still_have_to_send(
    backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """plain_room() is the window's free places less the messages every other holder said
    it still has to send there with the slot it asked for, granted or not: another
    coordinator, a forked child with an inherited one, another lane of this one; never the
    asking lane's own word, and a word older than DEMAND_TTL or taken back (0) no more."""
    now = [100.0]
    first, second = coordinator_pair(backend, tmp_path, now)
    post = await first.acquire("channel:1", "7", backlog=2)
    assert isinstance(post, Grant)
    await first.complete(post, None)
    assert await first.plain_room("channel:1", "7") == 2  # its own word does not count
    assert await first.plain_room("channel:1", "8") == 0  # another lane: 2 free - 2 said
    if second is not first:
        assert await second.plain_room("channel:1", "7") == 0
    # A child forked after the word was said: it names itself anew (a process token drawn
    # again at the fork, or a holder of its own).
    monkeypatch.setattr(first, "_holder_token", lambda: "forked")
    assert await first.plain_room("channel:1", "7") == 0
    monkeypatch.undo()
    # A lane held back by the webhook's bucket still says what it has (the first mover of a
    # fleet must count those waiting for the bucket it just emptied).
    await first.block_webhook("8", 5.0)
    assert isinstance(await second.acquire("channel:1", "8", backlog=1), float)
    assert await first.plain_room("channel:1", "7") == 1
    assert isinstance(await second.acquire("channel:1", "8", backlog=0), float)
    assert await first.plain_room("channel:1", "7") == 2
    await second.block_webhook("7", 5.0)
    assert await first.acquire("channel:1", "7", backlog=3) == pytest.approx(5.0)
    assert await second.plain_room("channel:1", "8") == 0  # said while waiting, too
    now[0] += ledger.DEMAND_TTL + 0.1  # the word is forgotten (and the slot's stamp expired)
    assert await second.plain_room("channel:1", "8") == SMALL.channel_limit
    await first.aclose()
    await second.aclose()


async def test_many_incidents_change_in_one_transaction_each_as_if_alone(tmp_path: Path) -> None:
    """``incidents`` on the store directory's backend: up to ``incident_batch`` keys in one
    transaction (a flood's answered posts are published together, docs/architecture.md, "Who
    posts"), results in order, each change seeing its own state; a key met again starts the
    next transaction, so it sees what the first change made of it."""
    host = HostCoordinator(tmp_path, SMALL, clock=lambda: 1000.0)
    transactions = 0
    atomic = host._atomic

    async def counted(work: Any) -> Any:
        nonlocal transactions
        transactions += 1
        return await atomic(work)

    host._atomic = counted  # type: ignore[method-assign]

    def bump(state: IncidentState, now: float, gone: Any) -> int:
        state.shown += 1
        return state.shown

    await host.incident("webhook::first", bump)  # the first call prunes old rows too
    transactions = 0
    keys = [f"webhook::problem-{i}" for i in range(250)]
    assert await host.incidents([(key, bump) for key in keys]) == [1] * 250
    assert transactions == 2  # 200, then 50
    assert await host.incidents([(keys[0], bump), (keys[1], bump), (keys[0], bump)]) == [2, 2, 3]
    assert transactions == 4  # the repeated key went in a transaction of its own
    assert await host.incident(keys[1], bump) == 3
    host.close()


async def test_a_look_at_an_incident_takes_no_lock_and_writes_nothing(tmp_path: Path) -> None:
    """``peek_incidents`` (how a holder whose lane cannot post decides to keep a record,
    docs/architecture.md, "A record the lane cannot take now takes no claim") reads the state
    while another process holds the write lock (a transaction would wait for it, then give
    up: IncidentsUnavailable), and what its decision changed is written nowhere."""
    host = HostCoordinator(tmp_path, SMALL, clock=lambda: 1000.0)

    def bump(state: IncidentState, now: float, gone: Any) -> int:
        state.shown += 1
        state.claim = ("h0.", now + 60)  # a row that counts a while: not pruned
        return state.shown

    assert await host.incident("webhook::problem", bump) == 1  # opens the store
    other = sqlite3.connect(host.path, timeout=0, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another process's transaction, under way
    try:
        assert await host.peek_incidents([("webhook::problem", bump)]) == [2]  # on a copy
        # Many incidents on one look (a line of updates): each on its own copy, even twice.
        looks = [("webhook::problem", bump), ("webhook::new", bump), ("webhook::problem", bump)]
        assert await host.peek_incidents(looks) == [2, 1, 2]
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert await host.incident("webhook::problem", bump) == 2  # the looks wrote nothing
    assert await host.incident("webhook::new", bump) == 1
    host.close()


async def test_a_look_at_a_local_incident_changes_nothing() -> None:
    """The one-process backend hands a look copies: a decision made on them changes nothing."""
    local = LocalCoordinator(SMALL, clock=lambda: 1000.0)

    def bump(state: IncidentState, now: float, gone: Any) -> int:
        state.shown += 1
        return state.shown

    assert await local.peek_incidents([("webhook::problem", bump)]) == [1]
    assert await local.peek_incidents([("webhook::problem", bump)]) == [1]
    assert await local.incident("webhook::problem", bump) == 1
