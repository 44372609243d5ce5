"""One incident message per problem across the fleet (issue 30, point 1): forked workers of one
store, "hosts" of one Redis, and a restart during an incident all show one problem in one
message, edited to the fleet's total, which says "quiet since" once the whole fleet is quiet."""

from __future__ import annotations

import collections
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from redis_server import RedisServer
from waiting import FAILSAFE, wait_for

from discord_logging.store import Store
from discord_logging.testing import FakeDiscord

pytestmark = [
    pytest.mark.slow,  # real processes, a real redis-server
    pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork"),
]

WORKER = Path(__file__).with_name("incident_worker.py")
TOTAL = re.compile(r"\*\*(\d+) records\*\*")


def start(config: dict[str, Any]) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.Popen(
        [sys.executable, str(WORKER), json.dumps(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def finish(process: subprocess.Popen[str]) -> list[dict[str, Any]]:
    out, err = process.communicate(timeout=FAILSAFE)
    assert process.returncode == 0, err
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def config(fake: FakeDiscord, url: str, store: Path, **more: Any) -> dict[str, Any]:
    return {
        "webhook": url,
        "host": fake.host,
        "store": str(store),
        "repeats": 30,
        "gap": 0.02,
        "window": 1.0,
        "interval": 0.2,
        **more,
    }


def description(fake: FakeDiscord, index: int) -> str:
    message = fake.message(fake.messages[index].message_id)
    assert message is not None
    return str(message.embeds[0].get("description", ""))


def settled(fake: FakeDiscord, total: int) -> bool:
    """The latest message posted says quiet since, and the messages count ``total`` records
    together (one message with the fleet's total; before issue 30, one per process)."""
    texts = [description(fake, i) for i in range(len(fake.messages))]
    counts = [int(m.group(1)) if (m := TOTAL.search(t)) else 1 for t in texts]
    return bool(texts) and "quiet since" in texts[-1] and sum(counts) >= total


def books_balance(stats: list[dict[str, Any]]) -> None:
    for one in stats:
        accounted = one["delivered"] + one["aggregated"] + one["dead_lettered"]
        assert accounted == one["emitted"], one
        assert one["dropped"] == {}, one


def run_until_settled(
    fake: FakeDiscord, processes: list[subprocess.Popen[str]], total: int, stop: Path
) -> list[dict[str, Any]]:
    """Wait until the messages settle at ``total`` records, then let the processes close and
    end; their stats, after checking that each one's books balance."""
    done = wait_for(lambda: settled(fake, total))
    shown = [description(fake, i) for i in range(len(fake.messages))]
    stop.touch()
    stats = [one for process in processes for one in finish(process)]
    # What a reader saw and what each holder counted: the one failure on record said only
    # "1 message".
    assert done, (shown, stats)
    books_balance(stats)
    return stats


def one_message_of(fake: FakeDiscord, total: int, senders: int) -> None:
    """One message, its last edit saying quiet since with ``total`` records, whose records
    file lists every record of every sender."""
    assert len(fake.messages) == 1, [description(fake, i) for i in range(len(fake.messages))]
    text = description(fake, 0)
    assert f"**{total} records**" in text
    assert "quiet since" in text
    message = fake.message(fake.messages[0].message_id)
    assert message is not None
    listing = message.files["records.txt"].decode()
    assert listing.count(" UTC  database connection refused") == total
    assert len(set(re.findall(r"from (\w+) attempt", listing))) == senders


def test_four_forked_workers_show_one_problem_in_one_message(tmp_path: Path) -> None:
    """4 forked workers of one handler (one store) each log one problem 30 times: one message,
    edited to 120 records, saying quiet since once all four are quiet."""
    stop = tmp_path / "stop"
    with FakeDiscord() as fake:
        url = fake.add_webhook()
        app = start(config(fake, url, tmp_path / "store", workers=4, stop=str(stop)))
        stats = run_until_settled(fake, [app], 120, stop)
        one_message_of(fake, 120, senders=4)
        assert len(stats) == 4


def test_two_hosts_on_one_redis_show_one_problem_in_one_message(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    """2 "hosts" (separate store directories) sharing one Redis each log one problem 30
    times: one message, edited to 60 records, quiet once both are."""
    stop = tmp_path / "stop"
    with FakeDiscord() as fake:
        url = fake.add_webhook()
        hosts = [
            start(
                config(
                    fake,
                    url,
                    tmp_path / f"host-{n}",
                    redis_url=redis_server.url,
                    label=f"host{n}",
                    stop=str(stop),
                )
            )
            for n in range(2)
        ]
        assert len(run_until_settled(fake, hosts, 60, stop)) == 2
        one_message_of(fake, 60, senders=2)


def test_a_restart_during_an_incident_edits_the_same_message(tmp_path: Path) -> None:
    """A process logs a problem and exits mid-incident; its successor on the same store logs
    it again within the window: the first message is edited (20 records, then quiet), no
    second message is posted."""
    stop = tmp_path / "stop"
    store = tmp_path / "store"
    with FakeDiscord() as fake:
        url = fake.add_webhook()
        first = finish(start(config(fake, url, store, repeats=10, label="before", window=3.0)))
        assert len(fake.messages) == 1
        second = start(
            config(fake, url, store, repeats=10, label="after", window=3.0, stop=str(stop))
        )
        run_until_settled(fake, [second], 20, stop)
        one_message_of(fake, 20, senders=2)
        books_balance(first)


def test_a_worker_killed_mid_incident_leaves_nothing_stuck(tmp_path: Path) -> None:
    """Of 2 forked workers logging one problem, one is killed (SIGKILL) mid-incident: its lock
    goes with it, so the other's message still says quiet since, counting both."""
    stop = tmp_path / "stop"
    with FakeDiscord() as fake:
        url = fake.add_webhook()
        app = start(config(fake, url, tmp_path / "store", workers=2, dies="p0", stop=str(stop)))
        (survivor,) = run_until_settled(fake, [app], 31, stop)
        assert len(fake.messages) == 1
        text = description(fake, 0)
        match = TOTAL.search(text)
        assert match is not None
        assert 31 <= int(match.group(1)) <= 60, text
        assert "quiet since" in text
        assert survivor["who"] == "p1"


def test_incidents_go_on_in_this_process_while_redis_is_away(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    """Redis stops mid-incident: the incident goes on in this process (its repeats counted,
    a new problem's first record posted), nothing is lost."""
    import logging

    from discord_logging import DiscordHandler

    with FakeDiscord() as fake:
        handler = DiscordHandler(
            webhooks={"error": fake.add_webhook()},
            allowed_hosts=fake.host,
            store_path=str(tmp_path / "store"),
            redis_url=redis_server.url,
            aggregate_window=1.0,
            incident_edit_interval=0.2,
        )
        log = logging.getLogger("fleet.redis-away")
        log.propagate = False
        log.addHandler(handler)
        try:
            log.error("database connection refused (host %s)", "db-1")
            assert wait_for(lambda: len(fake.messages) == 1)
            redis_server.stop()
            for i in range(5):
                log.error("database connection refused (host %s)", f"db-{i}")
            log.error("a new problem while Redis is away")
            assert handler.flush(FAILSAFE)
        finally:
            handler.close()
        stats = handler.stats()
        books_balance([stats])
        posted = json.dumps([m.payload for m in fake.messages])
        assert "a new problem while Redis is away" in posted


def channel_text(fake: FakeDiscord) -> str:
    """All a reader can read in the channel: every message's embeds (titles, descriptions)
    and attached files (a digest's records, an incident's listing), as they are now."""
    parts = []
    for posted in fake.messages:
        message = fake.message(posted.message_id)
        assert message is not None
        for embed in message.embeds:
            parts += [str(embed.get("title", "")), str(embed.get("description", ""))]
        parts += [data.decode() for data in message.files.values()]
    return "\n".join(parts)


def summary_counts(fake: FakeDiscord) -> list[tuple[str, int]]:
    """(sender, count) of every summary of the problem in the channel: an embed of its own
    ("... from p0 attempt 29 (x 30)"), or an entry of a digest's records file."""
    found = []
    for posted in fake.messages:
        message = fake.message(posted.message_id)
        assert message is not None
        titles = [str(embed.get("title", "")) for embed in message.embeds]
        if titles and titles[0].endswith("(digest)"):
            listing = message.files["records.txt"].decode()
            found += re.findall(r"from (p\d) attempt \d+\n\n(\d+) records since", listing)
        else:
            found += [
                m.groups() for t in titles if (m := re.search(r"from (p\d) .* \(x (\d+)\)$", t))
            ]
    return [(who, int(count)) for who, count in found]


@pytest.mark.parametrize("fleet", ["one store", "two hosts on Redis"])
def test_two_workers_flooding_while_discord_is_down_lose_nothing_and_post_nothing_twice(
    tmp_path: Path, request: pytest.FixtureRequest, fleet: str
) -> None:
    """2 workers (forked, on one store; or 2 "hosts", each its own store, sharing Redis) log
    one problem 30 times and 40 distinct records each while Discord answers 503: once
    Discord is back, what they kept is delivered. Every distinct record is shown exactly once
    (its own embed or a digest's entry), and each worker's records of the problem are
    counted once, by one summary."""
    stop, logged = tmp_path / "stop", tmp_path / "logged"
    logged.mkdir()
    common = {
        "gap": 0,
        "distinct": 40,
        "logged": str(logged),
        "drain": True,
        "stop": str(stop),
        "retry_attempts": 1,
        "engine": {"circuit_reset": 0.3},
        # The storms go quiet after Discord is back (most runs): their quiet word could then
        # be posted, a second summary of what a kept update shows.
        "window": 3.0,
    }
    stores = [tmp_path / "store"] if fleet == "one store" else [tmp_path / "h0", tmp_path / "h1"]
    with FakeDiscord() as fake:
        url = fake.add_webhook()
        fake.set_status_override(url.split("/")[-2], 503)
        if fleet == "one store":
            apps = [start(config(fake, url, stores[0], workers=2, **common))]
        else:
            redis = request.getfixturevalue("redis_server").url
            apps = [
                start(config(fake, url, where, redis_url=redis, label=f"p{n}", **common))
                for n, where in enumerate(stores)
            ]
        assert wait_for(lambda: len(list(logged.iterdir())) == 2), [a.poll() for a in apps]
        kept_while_down = fake.count_status(503)
        fake.set_status_override(url.split("/")[-2], None)
        stop.touch()
        stats = [one for app in apps for one in finish(app)]
        text = channel_text(fake)
    books_balance(stats)
    assert kept_while_down > 0
    assert sum(one["dead_lettered"] for one in stats) >= 80  # the distinct ones were kept
    for where in stores:
        store = Store(where)
        try:
            assert len(store.dead_letters) == 0  # all redelivered
        finally:
            store.close()
    shown = collections.Counter(re.findall(r"order (p\d-\d+) failed validation", text))
    assert shown == {f"p{n}-{i}": 1 for n in range(2) for i in range(40)}
    # Each worker's 30 records of the problem are counted once, by one summary of its storm:
    # a kept update shows the count, and a later word of the storm showing no more is
    # dropped ("A kept update is its storm's word"), not posted as a second summary.
    assert sorted(summary_counts(fake)) == [("p0", 30), ("p1", 30)]
