"""Exit delivers: a script that logs and exits delivers, or keeps the record in the store and
says so in one stderr line; also when the host needs a name lookup and the pool is gone."""

from __future__ import annotations

import os
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

from discord_logging.store import Store
from discord_logging.testing import FakeDiscord

pytestmark = pytest.mark.slow  # real processes

LOG_AND_EXIT = """
log.addHandler(make_handler())
log.error("exit-record")
"""


def test_one_error_then_exit_is_delivered_once(fake_discord: FakeDiscord, tmp_path: Path) -> None:
    """The record logged just before a normal exit arrives, exactly once, via ``localhost``."""
    url = fake_discord.add_webhook(host="localhost")
    done = run_script(
        LOG_AND_EXIT, script_env(fake_discord, url, tmp_path / "store", HEALTHY_CLOSE), tmp_path
    )
    assert done.returncode == 0, done.stderr
    assert titles(fake_discord).count("exit-record") == 1, done.stderr
    assert library_lines(done.stderr) == []
    assert "Traceback" not in done.stderr


def test_logged_from_atexit_after_pool_shutdown_is_delivered(
    fake_discord: FakeDiscord, tmp_path: Path
) -> None:
    """A record logged by an atexit function, after concurrent.futures refused new work and
    the handler's exit drain ran, still gets its name lookup and arrives."""
    url = fake_discord.add_webhook(host="localhost")
    body = """
    import atexit, concurrent.futures.thread

    def late():
        assert concurrent.futures.thread._shutdown  # the pool refuses work by now
        log.error("atexit-record")

    log.addHandler(make_handler())
    atexit.register(late)  # runs before logging.shutdown (registered earlier)
    """
    done = run_script(
        body, script_env(fake_discord, url, tmp_path / "store", HEALTHY_CLOSE), tmp_path
    )
    assert done.returncode == 0, done.stderr
    assert titles(fake_discord) == ["atexit-record"], done.stderr
    assert "Traceback" not in done.stderr


def test_pool_shut_down_before_the_first_lookup(fake_discord: FakeDiscord, tmp_path: Path) -> None:
    """With concurrent.futures already shut down when the first lookup runs (as at exit), the
    lookup runs inline and the record arrives."""
    url = fake_discord.add_webhook(host="localhost")
    body = """
    import concurrent.futures.thread
    concurrent.futures.thread._shutdown = True
    handler = make_handler()
    log.addHandler(handler)
    log.error("no-pool-record")
    assert handler.flush(60)
    """
    done = run_script(body, script_env(fake_discord, url, tmp_path / "store"), tmp_path)
    assert done.returncode == 0, done.stderr
    assert titles(fake_discord) == ["no-pool-record"], done.stderr


def test_unhealthy_discord_at_exit_keeps_the_record_then_next_run_delivers(
    fake_discord: FakeDiscord, tmp_path: Path
) -> None:
    """Discord answering 503 at exit: the record stays in the store, one stderr line says how
    many and where; the next run (which logs nothing) delivers it."""
    url = fake_discord.add_webhook(host="localhost")
    store = tmp_path / "store"
    fake_discord.fail_next(10_000, 503)
    done = run_script(LOG_AND_EXIT, script_env(fake_discord, url, store, 1.0), tmp_path)
    assert done.returncode == 0, done.stderr
    lines = library_lines(done.stderr)
    assert len(lines) == 1, done.stderr
    assert "1 dead letter kept in the store at" in lines[0]
    assert str(store) in lines[0]
    assert fake_discord.messages == []
    fake_discord.reset()
    again = run_script(next_start(1), script_env(fake_discord, url, store), tmp_path, "again.py")
    assert again.returncode == 0, again.stderr
    assert titles(fake_discord) == ["exit-record"], again.stderr


BURST = """
handler = make_handler()
log.addHandler(handler)
for i in range(60):
    log.error("burst %d", i)
"""


def kept_in(store: Path) -> int:
    """How many dead letters a fresh Store finds at ``store``."""
    opened = Store(store)
    try:
        return len(opened.dead_letters)
    finally:
        opened.close()


@pytest.mark.parametrize("ending", ["exit", "flush then os._exit"])
def test_a_burst_larger_than_the_queue_is_delivered_before_the_script_ends(
    fake_discord: FakeDiscord, tmp_path: Path, ending: str
) -> None:
    """60 records into a queue of 10, then a normal exit, or flush() and os._exit (as a
    forked worker ends): the 50 that overflowed into the store are taken back and delivered
    before the process is gone, each once, and nothing is left for the next run."""
    url = fake_discord.add_webhook(host="localhost")
    store = tmp_path / "store"
    env = script_env(fake_discord, url, store, close_timeout=15)
    env["DISCORD_QUEUE_SIZE"] = "10"
    body = BURST
    if ending != "exit":
        body += "assert handler.flush(60), 'flush timed out'\nos._exit(0)\n"
    done = run_script(body, env, tmp_path)
    assert done.returncode == 0, done.stderr
    got = titles(fake_discord)
    assert sorted(got) == sorted(f"burst {i}" for i in range(60)), done.stderr
    assert library_lines(done.stderr) == []
    assert kept_in(store) == 0


def test_unreachable_discord_at_exit_keeps_the_record(tmp_path: Path) -> None:
    """Nothing listening at the webhook's address: kept in the store, one stderr line."""
    with FakeDiscord() as fake:
        url = fake.add_webhook(host="localhost")
        env = script_env(fake, url, tmp_path / "store", 1.0)
    done = run_script(LOG_AND_EXIT, env, tmp_path)
    assert done.returncode == 0, done.stderr
    lines = library_lines(done.stderr)
    assert len(lines) == 1, done.stderr
    assert "1 dead letter kept in the store at" in lines[0]


def test_memory_only_letters_are_reported_lost(fake_discord: FakeDiscord, tmp_path: Path) -> None:
    """With the store unusable, what could not be delivered is reported as LOST, not kept."""
    url = fake_discord.add_webhook(host="localhost")
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("x", encoding="utf-8")
    fake_discord.fail_next(10_000, 503)
    done = run_script(LOG_AND_EXIT, script_env(fake_discord, url, blocker / "store", 1.0), tmp_path)
    assert done.returncode == 0, done.stderr
    lost = [line for line in library_lines(done.stderr) if "LOST" in line]
    assert len(lost) == 1, done.stderr
    assert "1 dead letter LOST" in lost[0]


# An interpreter of Python 3.12.0-3.12.2 with discord-logging installed, e.g. a venv made
# with pyenv's 3.12.1: those versions refuse to start a thread at exit.
PY312 = os.environ.get("DISCORD_LOGGING_PY312")


@pytest.mark.skipif(not PY312, reason="set DISCORD_LOGGING_PY312 to a Python 3.12.0-3.12.2")
def test_exit_on_python_3_12_early_releases(fake_discord: FakeDiscord, tmp_path: Path) -> None:
    """On 3.12.0-3.12.2 the record is delivered at exit, and logging.shutdown still closes
    the handlers closed after ours (created before it)."""
    assert PY312 is not None
    url = fake_discord.add_webhook(host="localhost")
    body = """
    class Marker(logging.Handler):
        def emit(self, record):
            pass
        def close(self):
            open("closed.txt", "w").close()
            super().close()

    log.addHandler(Marker())
    log.addHandler(make_handler())
    log.error("exit-record")
    """
    env = script_env(fake_discord, url, tmp_path / "store", HEALTHY_CLOSE)
    done = run_script(body, env, tmp_path, python=PY312)
    assert done.returncode == 0, done.stderr
    assert titles(fake_discord) == ["exit-record"], done.stderr
    assert (tmp_path / "closed.txt").exists(), done.stderr
    assert "Traceback" not in done.stderr


def test_a_name_lookup_that_never_answers_does_not_hold_the_exit(
    fake_discord: FakeDiscord, tmp_path: Path
) -> None:
    """A resolver that never answers (the lookup of ``localhost`` hangs, as a DNS server
    that drops queries does): the exit keeps ``close_timeout`` and keeps the record in the
    store, instead of waiting for the lookup's thread, which a thread pool joins at exit
    without a limit (the process then never ended)."""
    url = fake_discord.add_webhook(host="localhost")
    body = """
    import socket, threading

    real = socket.getaddrinfo

    def never_answers(host, *args, **kwargs):
        if host in ("localhost", b"localhost"):
            threading.Event().wait()  # forever
        return real(host, *args, **kwargs)

    socket.getaddrinfo = never_answers
    log.addHandler(make_handler())
    log.error("looked up forever")
    """
    done = run_script(body, script_env(fake_discord, url, tmp_path / "store", 1.0), tmp_path)
    assert done.returncode == 0, done.stderr
    assert titles(fake_discord) == []
    (line,) = library_lines(done.stderr)
    assert "1 dead letter kept in the store" in line, line
    assert [x.notification.title for x in kept_letters(tmp_path / "store")] == ["looked up forever"]


def test_the_exit_line_counts_only_this_processs_letters(
    fake_discord: FakeDiscord, tmp_path: Path
) -> None:
    """Two processes on one store: the first keeps a letter for its own webhook during an
    outage and says so; the second, whose records were all delivered, says nothing, though
    the store still holds the first one's letter (it used to count the whole store's:
    "0 notifications not delivered by the close deadline; 1 dead letter kept")."""
    store = tmp_path / "store"
    first = fake_discord.add_webhook(host="localhost")
    fake_discord.set_status_override(first.split("/")[-2], 503)
    done = run_script(LOG_AND_EXIT, script_env(fake_discord, first, store, 0.5), tmp_path)
    (line,) = library_lines(done.stderr)
    assert "1 dead letter kept in the store" in line, line
    second = fake_discord.add_webhook(host="localhost")
    again = run_script(
        LOG_AND_EXIT, script_env(fake_discord, second, store, HEALTHY_CLOSE), tmp_path, "b.py"
    )
    assert again.returncode == 0, again.stderr
    assert titles(fake_discord) == ["exit-record"]
    assert library_lines(again.stderr) == []
    assert len(kept_letters(store)) == 1
