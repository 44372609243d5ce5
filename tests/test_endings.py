"""How a process ends (issue 19): SIGTERM at its default disposition, as ``docker stop``,
systemd, Kubernetes and a plain ``kill`` send it, runs the handlers' drain before the process
dies by the signal. Real subprocesses against FakeDiscord through ``localhost``."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
from processkit import (
    HEALTHY_CLOSE,
    kept_letters,
    library_lines,
    next_start,
    run_script,
    script_env,
    titles,
)
from waiting import wait_for

from discord_logging.testing import FakeDiscord

pytestmark = pytest.mark.slow  # real processes

LOG_THEN_SIGTERM = """
import time
handler = make_handler()
log.addHandler(handler)
for i in range(5):
    log.error("record %d before SIGTERM", i)
time.sleep(0.3)
os.kill(os.getpid(), __import__("signal").SIGTERM)
time.sleep(30)  # never reached: SIGTERM ends the process
"""


def test_sigterm_during_an_outage_keeps_every_record_and_the_next_start_delivers_them(
    fake_discord: FakeDiscord, tmp_path: Path
) -> None:
    """SIGTERM with Python's default disposition: the handler drains (Discord answers 503, so
    the 5 records are kept in the store, said on stderr), the process still ends by SIGTERM
    (the parent sees -15), and the next start, logging nothing, delivers all 5."""
    url = fake_discord.add_webhook(host="localhost")
    store = tmp_path / "store"
    fake_discord.fail_next(10_000, 503)
    done = run_script(LOG_THEN_SIGTERM, script_env(fake_discord, url, store), tmp_path)
    assert done.returncode == -signal.SIGTERM, done.stderr
    (line,) = library_lines(done.stderr)
    assert "5 dead letters kept in the store" in line, line
    fake_discord.reset()
    again = run_script(next_start(5), script_env(fake_discord, url, store), tmp_path, "again.py")
    assert again.returncode == 0, again.stderr
    assert sorted(titles(fake_discord)) == [f"record {i} before SIGTERM" for i in range(5)]
    assert kept_letters(store) == []


def test_sigterm_while_healthy_delivers_before_the_process_ends(
    fake_discord: FakeDiscord, tmp_path: Path
) -> None:
    """With Discord healthy, what was logged just before SIGTERM arrives before the end."""
    url = fake_discord.add_webhook(host="localhost")
    done = run_script(
        LOG_THEN_SIGTERM, script_env(fake_discord, url, tmp_path / "s", HEALTHY_CLOSE), tmp_path
    )
    assert done.returncode == -signal.SIGTERM, done.stderr
    assert wait_for(lambda: len(titles(fake_discord)) == 5)
    assert library_lines(done.stderr) == []


def test_an_applications_own_sigterm_handler_is_left_alone(
    fake_discord: FakeDiscord, tmp_path: Path
) -> None:
    """An application (or server) that handles SIGTERM itself keeps its handler: the library
    installs nothing, and the application's exit path is the one that runs."""
    url = fake_discord.add_webhook(host="localhost")
    body = """
    import signal
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(3))
    handler = make_handler()
    log.addHandler(handler)
    log.error("handled by the application")
    os.kill(os.getpid(), signal.SIGTERM)
    """
    done = run_script(body, script_env(fake_discord, url, tmp_path / "s", HEALTHY_CLOSE), tmp_path)
    assert done.returncode == 3, done.stderr
    assert titles(fake_discord) == ["handled by the application"]


def test_the_setting_turns_it_off(fake_discord: FakeDiscord, tmp_path: Path) -> None:
    """DISCORD_HANDLE_SIGTERM=false: SIGTERM kills as Python's default does, nothing drains."""
    url = fake_discord.add_webhook(host="localhost")
    fake_discord.set_hang(True)  # nothing can be delivered before the signal
    env = dict(script_env(fake_discord, url, tmp_path / "s"), DISCORD_HANDLE_SIGTERM="false")
    done = run_script(LOG_THEN_SIGTERM, env, tmp_path)
    fake_discord.set_hang(False)
    assert done.returncode == -signal.SIGTERM
    assert library_lines(done.stderr) == []


UNDER_UVICORN = """
import signal
import uvicorn

async def app(scope, receive, send):
    assert scope["type"] == "lifespan"
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            # Created under uvicorn's own SIGTERM handler, as in a lifespan or an app that
            # uvicorn imports itself; never closed: the storm's count is held for the window.
            log.addHandler(DiscordHandler(
                webhooks={"general": os.environ["TEST_WEBHOOK"]},
                allowed_hosts=os.environ["TEST_HOSTS"],
            ))
            for _ in range(3):
                log.error("storm under uvicorn")
            await send({"type": "lifespan.startup.complete"})
            os.kill(os.getpid(), signal.SIGTERM)  # as a process manager stops it
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return

uvicorn.run(app, host="127.0.0.1", port=0, log_level="warning")
"""


def test_under_uvicorns_own_sigterm_handler_the_storm_count_arrives_and_it_still_dies_by_sigterm(
    fake_discord: FakeDiscord, tmp_path: Path
) -> None:
    """uvicorn (one process) handles SIGTERM, shuts down gracefully, then re-raises SIGTERM at
    its default disposition: the handler created under uvicorn's handler still drains before
    the process dies, and it dies by SIGTERM (-15) as uvicorn meant."""
    url = fake_discord.add_webhook(host="localhost")
    done = run_script(
        UNDER_UVICORN, script_env(fake_discord, url, tmp_path / "s", HEALTHY_CLOSE), tmp_path
    )
    assert done.returncode == -signal.SIGTERM, done.stderr
    [message] = fake_discord.messages
    edited = fake_discord.message(message.message_id)
    assert edited is not None
    assert [e["title"] for e in edited.embeds] == ["storm under uvicorn (x 3)"], done.stderr
    assert library_lines(done.stderr) == []


def test_an_opt_out_written_only_in_dotenv_is_honoured(
    fake_discord: FakeDiscord, tmp_path: Path
) -> None:
    """DISCORD_HANDLE_SIGTERM=false in ``.env`` only (the handler is built before its settings
    load, so it installs the drain): at SIGTERM the handler reads the setting and stands
    aside; the process dies by SIGTERM as Python's default, nothing drained or said."""
    url = fake_discord.add_webhook(host="localhost")
    fake_discord.set_hang(True)  # nothing can be delivered before the signal
    (tmp_path / ".env").write_text("DISCORD_HANDLE_SIGTERM=false\n", encoding="utf-8")
    done = run_script(LOG_THEN_SIGTERM, script_env(fake_discord, url, tmp_path / "s"), tmp_path)
    fake_discord.set_hang(False)
    assert done.returncode == -signal.SIGTERM
    assert library_lines(done.stderr) == []


def test_under_uvicorn_during_an_outage_the_storm_is_kept_and_the_next_start_delivers_it(
    fake_discord: FakeDiscord, tmp_path: Path
) -> None:
    """The same uvicorn during an outage (503): the drain after uvicorn's graceful shutdown
    keeps the storm in the store (its first record and its count: one stderr line), the process
    still dies by SIGTERM, and the next start, logging nothing, delivers both once."""
    url = fake_discord.add_webhook(host="localhost")
    store = tmp_path / "store"
    fake_discord.fail_next(10_000, 503)
    done = run_script(UNDER_UVICORN, script_env(fake_discord, url, store), tmp_path)
    assert done.returncode == -signal.SIGTERM, done.stderr
    (line,) = library_lines(done.stderr)
    assert "kept in the store" in line, line
    assert len(kept_letters(store)) == 2
    fake_discord.reset()
    again = run_script(next_start(2), script_env(fake_discord, url, store), tmp_path, "again.py")
    assert again.returncode == 0, again.stderr
    # The storm's first record and its count, each kept and each delivered once.
    assert wait_for(lambda: len(titles(fake_discord)) >= 2)
    assert sorted(titles(fake_discord)) == ["storm under uvicorn", "storm under uvicorn (x 3)"]
    assert kept_letters(store) == []
