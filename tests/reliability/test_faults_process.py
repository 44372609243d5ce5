"""Fault matrix, process side: a child process logs a burst to a FakeDiscord running here and
is signalled mid-burst. Afterwards Discord's messages plus the child's store must account for
every record the child logged (SIGTERM), or lose at most what was still in memory (SIGKILL).

How an application should handle SIGTERM: Python's default action for SIGTERM ends the
process without running ``atexit``, so ``logging.shutdown`` never flushes the handler and
everything in memory is lost, as with SIGKILL. Install a handler that exits normally::

    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))

``sys.exit`` runs ``atexit``, which runs ``logging.shutdown``, which flushes and closes the
DiscordHandler: it delivers what it can within ``close_timeout`` and keeps the rest as dead
letters in the store. The child below does exactly that.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from discord_logging.render.packing import DIGEST_MAX_RECORDS
from discord_logging.store import WRITE_BATCH, Store
from discord_logging.testing import FakeDiscord

from .faultkit import FAST, marked, message_text, wait_until

pytestmark = [
    pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals"),
    pytest.mark.slow,  # real processes
]

CHILD = '''\
"""Log a burst through DiscordHandler; report progress in a file after every call."""
import json
import logging
import os
import signal
import sys
import time

from discord_logging import DiscordHandler

config = json.loads(sys.argv[1])
if config["exit_on_sigterm"]:
    # The recommended SIGTERM handling: exit normally so atexit runs logging.shutdown.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))
handler = DiscordHandler(
    webhooks={"general": config["url"]},
    allowed_hosts=config["host"],
    store_path=config["store"],
    aggregate_window=0,
    queue_size=config["queue_size"],
    close_timeout=config["close_timeout"],
    timeout=1.0,
    engine_options=config["engine"],
)
logger = logging.getLogger("burst")
logger.addHandler(handler)
logger.setLevel(logging.INFO)
logger.propagate = False
logger.error("warm-up")
handler.flush(60)

fd = os.open(config["progress"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
sampled_at = depth = 0


def progress(count):
    # One fixed-width pwrite: the parent never reads half a line. Written after each call
    # returned, so "count" never exceeds the records really handed to the handler.
    os.pwrite(fd, f"{count:10d} {sampled_at:10d} {depth:10d}\\n".encode(), 0)


progress(0)
for i in range(config["records"]):
    logger.error("burst rec#%d#", i)
    if (i + 1) % config["sample_every"] == 0:
        # What the handler holds in memory right now (hand-off + lane queues + in flight).
        sampled_at, depth = i + 1, handler.stats()["queue_depth"]
    progress(i + 1)
    if (i + 1) % config["pace_every"] == 0:
        time.sleep(0.001)
while True:  # burst done before the signal came: wait for it
    time.sleep(0.05)
'''


@dataclass
class Burst:
    """What one child run left behind."""

    emitted: int  # logger calls that had returned when the signal came
    sampled_at: int  # the count at the last queue-depth sample
    depth: int  # the handler's queue depth at that sample
    delivered: set[int]  # record numbers Discord (the fake) accepted
    dead_letters: set[int]  # record numbers kept as dead letters in the child's store
    history_delivered: set[int]  # record numbers the child's history says were delivered
    store_degraded: bool
    returncode: int
    stderr: str

    @property
    def lost(self) -> set[int]:
        """Records logged but neither delivered nor kept."""
        kept = self.delivered | self.dead_letters | self.history_delivered
        return set(range(self.emitted)) - kept


def read_progress(path: Path) -> tuple[int, int, int]:
    """(count, sampled_at, depth) from the child's progress file; zeros before it exists."""
    try:
        fields = path.read_text().split()
    except FileNotFoundError:
        return 0, 0, 0
    if len(fields) != 3:
        return 0, 0, 0
    count, sampled_at, depth = (int(f) for f in fields)
    return count, sampled_at, depth


def run_burst(
    tmp_path: Path,
    fake: FakeDiscord,
    sig: signal.Signals,
    *,
    records: int,
    signal_at: int,
    queue_size: int = 100,
    close_timeout: float = 1.0,
    exit_on_sigterm: bool = True,
) -> Burst:
    """Start the child, signal it once ``signal_at`` calls returned, and collect the books."""
    script = tmp_path / "burst_child.py"
    script.write_text(CHILD)
    store_path = tmp_path / "child-store"
    progress = tmp_path / "progress"
    engine = {k: v for k, v in FAST.items() if k != "rand"}  # JSON only
    config: dict[str, Any] = {
        "url": fake.add_webhook(),
        "host": fake.host,
        "store": str(store_path),
        "progress": str(progress),
        "records": records,
        "queue_size": queue_size,
        "close_timeout": close_timeout,
        "engine": engine,
        "exit_on_sigterm": exit_on_sigterm,
        "sample_every": 50,
        "pace_every": 10,
    }
    with subprocess.Popen(
        [sys.executable, str(script), json.dumps(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as child:
        try:
            wait_until(
                lambda: read_progress(progress)[0] >= signal_at or child.poll() is not None,
                timeout=30,
            )
            assert child.poll() is None, child.communicate()[1]
            child.send_signal(sig)
            _, stderr = child.communicate(timeout=30)
        finally:
            if child.poll() is None:
                child.kill()
                child.communicate()
    emitted, sampled_at, depth = read_progress(progress)
    store = Store(store_path)
    try:
        assert store.history is not None
        letters = store.dead_letters.letters()
        history = store.history.query(status="delivered", limit=1_000_000)
        degraded = store.degraded
    finally:
        store.close()
    return Burst(
        emitted=emitted,
        sampled_at=sampled_at,
        depth=depth,
        delivered=marked(message_text(fake)),
        dead_letters=marked(" ".join(letter.notification.message for letter in letters)),
        history_delivered=marked(" ".join(str(entry.get("message")) for entry in history)),
        store_degraded=degraded,
        returncode=child.returncode,
        stderr=stderr,
    )


def report(burst: Burst, record_property: Any, label: str) -> None:
    """Print and record the numbers, for the reliability documentation."""
    numbers = {
        "emitted": burst.emitted,
        "delivered": len(burst.delivered),
        "dead_letters": len(burst.dead_letters),
        "history_delivered": len(burst.history_delivered),
        "lost": len(burst.lost),
        "queue_depth_sampled": burst.depth,
        "emitted_since_sample": burst.emitted - burst.sampled_at,
    }
    print(f"{label}: {numbers}")
    for key, value in numbers.items():
        record_property(f"{label}_{key}", value)


@pytest.mark.parametrize(
    ("records", "signal_at"),
    [(2_000, 1_000), pytest.param(20_000, 10_000, marks=pytest.mark.long)],
)
def test_sigterm_mid_burst_loses_nothing(
    tmp_path: Path, fake: FakeDiscord, record_property: Any, records: int, signal_at: int
) -> None:
    """SIGTERM mid-burst (handled as sys.exit): every record logged is delivered or kept."""
    burst = run_burst(tmp_path, fake, signal.SIGTERM, records=records, signal_at=signal_at)
    report(burst, record_property, "sigterm_handled")
    assert burst.returncode == 0, burst.stderr
    assert signal_at <= burst.emitted < records  # really mid-burst
    assert "Traceback" not in burst.stderr
    assert not burst.store_degraded
    assert burst.lost == set(), f"{len(burst.lost)} lost, e.g. {sorted(burst.lost)[:10]}"


@pytest.mark.parametrize(
    ("sig", "records", "signal_at"),
    [
        (signal.SIGKILL, 2_000, 1_000),
        (signal.SIGTERM, 2_000, 1_000),
        pytest.param(signal.SIGKILL, 20_000, 10_000, marks=pytest.mark.long),
    ],
    ids=["sigkill", "sigterm-unhandled", "sigkill-long"],
)
def test_sigkill_mid_burst_loses_at_most_what_was_in_memory(
    tmp_path: Path,
    fake: FakeDiscord,
    record_property: Any,
    sig: signal.Signals,
    records: int,
    signal_at: int,
) -> None:
    """SIGKILL (or an unhandled SIGTERM) mid-burst: store readable, loss <= what was in memory."""
    burst = run_burst(
        tmp_path, fake, sig, records=records, signal_at=signal_at, exit_on_sigterm=False
    )
    report(burst, record_property, "sigkill" if sig is signal.SIGKILL else "sigterm_unhandled")
    assert burst.returncode == -sig
    assert signal_at <= burst.emitted < records
    assert not burst.store_degraded
    # In memory at the signal: the queue depth at the last sample plus what was logged since
    # (hand-off, lane queue, the message in flight), one message's worth of records between
    # the lane and the dead letters, and the store's write-behind buffer.
    in_memory = burst.depth + (burst.emitted - burst.sampled_at) + DIGEST_MAX_RECORDS + WRITE_BATCH
    assert len(burst.lost) <= in_memory
