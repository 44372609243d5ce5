"""The shared mute table keeps one contract on both backends: the store directory's SQLite file
(0600) and a real redis-server."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from redis_server import RedisServer

from discord_logging.muting import Mute, Tally
from discord_logging.muting.control import unmute
from discord_logging.muting.table import FILE_NAME, MuteTable, open_table


@pytest.fixture(params=["sqlite", pytest.param("redis", marks=pytest.mark.slow)])
def tables(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[list[MuteTable]]:
    """Two connections to one shared table, as two processes hold them."""
    url = None
    if request.param == "redis":
        server: RedisServer = request.getfixturevalue("redis_server")
        url = server.url
    opened = [open_table(tmp_path / "store", url) for _ in range(2)]
    yield opened
    for table in opened:
        table.close()


def tally(count: int, first: float, sample: str) -> Tally:
    made = Tally()
    for i in range(count):
        made.add("general", first + i, sample)
    return made


def test_one_table_two_holders_one_summary(tables: list[MuteTable]) -> None:
    """A mute added once is seen by both; unmute ends it; both tallies merge into the one
    summary its first claimer gets; the second claim gets nothing."""
    one, two = tables
    mute = Mute("m1", "general", 100.0, 10_000.0, reason="deploy", by="host (pid 1)")
    assert one.add(mute)
    assert not two.add(mute)  # quiet hours: every process adds the same window
    assert [m for m, _ in two.mutes()] == [mute]
    assert [m.id for m in unmute(two, "general", now=200.0)] == ["m1"]
    ((ended, claimed),) = one.mutes()
    assert ended.end == 200.0
    assert not claimed
    one.add_tally("m1", "a", tally(2, 150.0, "first"))
    two.add_tally("m1", "b", tally(3, 120.0, "earlier"))
    one.add_tally("m1", "a", tally(4, 150.0, "first"))  # a holder's later tally replaces its own
    total = two.claim_summary("m1", "b")
    assert total is not None
    assert total.counts == {"general": 7}
    assert (total.first, total.last, total.sample) == (120.0, 153.0, "earlier")
    assert one.claim_summary("m1", "a") is None
    assert [claimed for _, claimed in one.mutes()] == [True]
    one.forget("m1")
    assert two.mutes() == []


def test_the_store_file_is_only_its_owners(tmp_path: Path) -> None:
    """mutes.sqlite3 is created 0600 in a 0700 store directory."""
    open_table(tmp_path / "store", None).close()
    mode = stat.S_IMODE(os.stat(tmp_path / "store" / FILE_NAME).st_mode)
    assert mode == 0o600
    assert stat.S_IMODE(os.stat(tmp_path / "store").st_mode) == 0o700
