"""Notification ids: the first 8 characters tell them apart, as git's short ids do."""

from __future__ import annotations

import subprocess
import sys

import pytest

from discord_logging.notification import new_id


def test_ids_of_one_process_differ_in_their_first_8_characters() -> None:
    """100,000 ids of one process have 100,000 distinct 8-character prefixes."""
    ids = [new_id() for _ in range(100_000)]
    assert len(set(ids)) == len(ids)
    assert len({i[:8] for i in ids}) == len(ids)
    assert {len(i) for i in ids} == {24}


@pytest.mark.slow  # a real process
def test_ids_of_two_processes_do_not_collide() -> None:
    """Another process (a restart) hands out other ids, and other short ids."""
    code = (
        "from discord_logging.notification import new_id; print(*[new_id() for _ in range(1000)])"
    )
    runs = [
        subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        ).stdout.split()
        for _ in range(2)
    ]
    assert not set(runs[0]) & set(runs[1])
    assert len({i[:8] for i in runs[0]} & {i[:8] for i in runs[1]}) < 5
