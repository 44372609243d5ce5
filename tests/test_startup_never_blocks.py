"""Nothing waits under logging's lock (issue 27, point 1): ``dictConfig`` twice or three
times in a fresh process (its handler's worker still starting), or with another thread
logging meanwhile, returns, and every alert arrives. On ec27658 the second ``dictConfig``
took 70 s: ``logging.shutdown`` flushed the first handler, which waited for its worker's
start under logging's module lock while that worker's imports needed the same lock."""

from __future__ import annotations

from pathlib import Path

import pytest
from freshkit import FAILSAFE, FreshProcess
from processkit import script_env, titles
from waiting import wait_for

from discord_logging.testing import FakeDiscord

# Configures logging TEST_TIMES times in a row with the same dictionary (as Django's
# autoreloader and a reloaded config do), logging an error after each; with TEST_OTHER, a
# second thread logs warnings the whole time. Then it marks "configured" and waits to be told
# to end (the test reads what arrived meanwhile).
RECONFIGURE = """
import logging.config, threading, time
from pathlib import Path

DISCORD = {"class": "discord_logging.DiscordHandler", "level": "ERROR", "aggregate_window": 0}
DISCORD["webhooks"] = {"general": os.environ["TEST_WEBHOOK"]}
DISCORD["allowed_hosts"] = os.environ["TEST_HOSTS"]
APP = {"handlers": ["discord"], "level": "INFO", "propagate": False}
CONFIG = {"version": 1, "disable_existing_loggers": False, "handlers": {"discord": DISCORD}}
CONFIG["loggers"] = {"app": APP}
other_log = logging.getLogger("other")
other_log.addHandler(logging.NullHandler())
other_log.propagate = False
stop = threading.Event()
warned = []

def other_thread():
    while not stop.is_set():
        other_log.warning("tick")  # takes logging's lock after each dictConfig
        warned.append(1)
        time.sleep(0.005)

other = threading.Thread(target=other_thread)
if os.environ.get("TEST_OTHER"):
    other.start()
    while not warned:  # it is logging
        time.sleep(0.001)
for i in range(int(os.environ["TEST_TIMES"])):
    logging.config.dictConfig(CONFIG)
    log.error("after configuration %d", i)
if other.is_alive():
    seen = len(warned)
    while len(warned) == seen:  # it logs on after the configurations
        time.sleep(0.001)
    stop.set()
    other.join()
Path("configured").touch()
sys.stdin.readline()
"""


@pytest.mark.slow
@pytest.mark.parametrize(
    ("times", "other"),
    [(2, False), (3, False), (2, True)],
    ids=["twice", "three-times", "twice-with-another-thread-logging"],
)
def test_dictconfig_again_in_a_fresh_process_returns_and_every_alert_arrives(
    fake_discord: FakeDiscord, tmp_path: Path, times: int, other: bool
) -> None:
    """A fresh process runs ``dictConfig`` ``times`` times in a row (the first handler's
    worker still importing when the second call closes it), logging an error after each,
    optionally with another thread logging warnings throughout: every call returns (and the
    other thread is never held) within the failsafe, and each error arrives once."""
    url = fake_discord.add_webhook(host="localhost")
    env = script_env(fake_discord, url, tmp_path / "store")
    env.update(TEST_TIMES=str(times), TEST_OTHER="1" if other else "")
    expected = [f"after configuration {i}" for i in range(times)]
    with FreshProcess(RECONFIGURE, env, tmp_path) as app:
        app.reach("configured")
        arrived = wait_for(lambda: sorted(titles(fake_discord)) == expected, FAILSAFE)
        assert arrived, f"{titles(fake_discord)}\n{app.output()}"
        assert app.finish() == 0, app.output()
    assert sorted(titles(fake_discord)) == expected
