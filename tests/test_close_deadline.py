"""The close deadline is a deadline (issue 19, point 4): whatever Discord does with a request
in flight at the end (takes it and never answers, stalls after the headers), the process ends
within ``close_timeout`` and a little, not the request's ``timeout``; the record is kept and
the next start delivers it, with the repeat note (Discord may have it). Real subprocesses
against FakeDiscord through ``localhost``."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from processkit import (
    library_lines,
    next_start,
    run_script,
    script_env,
    start_script,
    titles,
)
from waiting import wait_for

from discord_logging import DiscordHandler
from discord_logging import handler as handler_module
from discord_logging.deadletters import DeadLetterReason
from discord_logging.delivery.redelivery import REPEAT_NOTE
from discord_logging.delivery.worker import Worker
from discord_logging.muting.gate import MuteGate
from discord_logging.store import Store
from discord_logging.testing import FakeDiscord

pytestmark = pytest.mark.slow  # real processes

# Far below the request's 30 s timeout, far above close_timeout=1 plus the interpreter's end:
# what is checked is that the request in flight no longer holds the exit, not a speed.
EXIT_BOUND = 6.0

# Logs one record, then waits for the test to say "go" (once the request is in flight).
LOG_THEN_WAIT = """
handler = make_handler(timeout=30.0)
log.addHandler(handler)
log.error("in flight at the end")
sys.stdin.readline()
"""

REDELIVER = next_start(1)


def end_while_in_flight(
    fake: FakeDiscord, url: str, tmp: Path, store: Path, *, sigterm: bool
) -> subprocess.CompletedProcess[str]:
    """Start the script, wait until its request is held by the fake, then end it (told to
    go on: a normal exit; or SIGTERM) and wait at most EXIT_BOUND for it to be gone."""
    proc = start_script(LOG_THEN_WAIT, script_env(fake, url, store, close_timeout=1.0), tmp)
    try:
        assert wait_for(lambda: fake.pending == 1)
        if sigterm:
            proc.send_signal(signal.SIGTERM)
            stdout, stderr = proc.communicate(timeout=EXIT_BOUND)
        else:
            stdout, stderr = proc.communicate(b"go\n", timeout=EXIT_BOUND)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout.decode(), stderr.decode())


def kept_letters(store: Path) -> list[DeadLetterReason]:
    """The reasons of the dead letters a fresh Store finds at ``store``."""
    opened = Store(store)
    try:
        return [letter.reason for letter in opened.dead_letters.letters()]
    finally:
        opened.close()


@pytest.mark.parametrize("sigterm", [False, True], ids=["exit", "sigterm"])
@pytest.mark.parametrize("silence", ["no_answer", "stall_body"])
def test_a_request_discord_never_answers_does_not_hold_the_exit(
    fake_discord: FakeDiscord, tmp_path: Path, silence: str, sigterm: bool
) -> None:
    """``close_timeout=1, timeout=30``, the request taken whole and never answered (or its
    answer stalled after the headers): a normal exit, or SIGTERM's drain, ends the process
    within the bound (it waited the request's 30 s before); the record is kept as uncertain
    with the one stderr line, and the next start delivers it with the repeat note."""
    store = tmp_path / "store"
    url = fake_discord.add_webhook(host="localhost")
    fake_discord.set_silent(silence)  # type: ignore[arg-type]
    done = end_while_in_flight(fake_discord, url, tmp_path, store, sigterm=sigterm)
    assert done.returncode == (-signal.SIGTERM if sigterm else 0), done.stderr
    (line,) = library_lines(done.stderr)
    assert "1 dead letter kept in the store at" in line, line
    assert kept_letters(store) == [DeadLetterReason.UNCERTAIN]
    fake_discord.set_silent(None)  # the held request is dropped, never acted on
    assert fake_discord.messages == []
    again = run_script(REDELIVER, script_env(fake_discord, url, store), tmp_path, "again.py")
    assert again.returncode == 0, again.stderr
    assert titles(fake_discord) == ["in flight at the end"], again.stderr
    (message,) = fake_discord.messages
    assert message.embeds[0]["footer"]["text"].startswith(REPEAT_NOTE)
    assert kept_letters(store) == []


class WaitRecorder:
    """Stands in for a handler's worker: records what each wait was given and advances the
    handler's clock by what it ``took``; ``stop`` stops the real worker."""

    def __init__(self, real: Worker, clock: list[float], took: dict[str, float]) -> None:
        self.real, self.clock, self.took = real, clock, took
        self.thread = real.thread
        self.journal = real.journal
        self.waits: list[tuple[str, float]] = []

    @property
    def ready(self) -> bool:
        return self.real.ready

    @property
    def mutes(self) -> MuteGate | None:
        """The real worker's mute gate: the handler closes it (and its table's connection) as
        the worker ends, through its ``_worker``, which is this stand-in."""
        return self.real.mutes

    def flush(self, deadline: float, *, wait_start: bool = True) -> bool:
        timeout = max(0.0, deadline - self.clock[0])
        self.waits.append(("flush", timeout))
        self.clock[0] += min(timeout, self.took["flush"])
        return False

    def stop(self, deadline: float) -> int:
        timeout = max(0.0, deadline - self.clock[0])
        self.waits.append(("stop", timeout))
        self.clock[0] += timeout
        return self.real.stop(time.monotonic() + timeout)

    def close_journal(self) -> None:
        self.real.close_journal()

    def wait_ready(self, timeout: float) -> bool:
        return self.real.wait_ready(timeout)


def recorded_handler(
    fake: FakeDiscord, tmp: Path, monkeypatch: pytest.MonkeyPatch, flush_took: float
) -> tuple[DiscordHandler, WaitRecorder]:
    """A handler with ``close_timeout=3`` on a clock of its own, its worker's waits recorded."""
    clock = [1000.0]
    monkeypatch.setattr(handler_module, "time", SimpleNamespace(monotonic=lambda: clock[0]))
    handler = DiscordHandler(
        webhooks={"general": fake.add_webhook()},
        allowed_hosts=fake.host,
        store_path=tmp / "store",
        close_timeout=3.0,
    )
    handler.wait_started()  # the recorder stands in for a worker that has started
    real = handler.worker
    assert real is not None
    recorder = WaitRecorder(real, clock, {"flush": flush_took})
    handler._worker = recorder  # type: ignore[assignment]
    return handler, recorder


@pytest.mark.parametrize(
    ("drain_took", "app_took", "flush_took", "flush_got", "stop_got"),
    [(3.0, 0.0, 3.0, 0.0, 0.0), (1.0, 0.5, 0.5, 1.5, 1.0), (1.0, 10.0, 0.5, 0.0, 0.0)],
    ids=["drain-used-it-all", "drain-used-part", "atexit-used-the-rest"],
)
def test_the_exit_drain_its_flush_and_close_share_one_close_timeout(
    fake_discord: FakeDiscord,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    drain_took: float,
    app_took: float,
    flush_took: float,
    flush_got: float,
    stop_got: float,
) -> None:
    """At exit the drain, logging.shutdown's flush and close all end by the one deadline the
    drain fixed, ``close_timeout`` (3 s) after it began: each wait gets what is left of it
    (each had its own 3 s before), the application's own atexit functions between them
    included (the exit keeps its deadline)."""
    handler, recorder = recorded_handler(fake_discord, tmp_path, monkeypatch, drain_took)
    handler._drain_before_exit()  # threading's exit hook
    recorder.clock[0] += app_took  # the application's atexit functions
    recorder.took["flush"] = flush_took
    handler.flush()  # logging.shutdown
    handler.close()
    assert recorder.waits == [
        ("flush", 3.0),
        ("flush", flush_got),
        ("stop", stop_got),
    ]


def test_close_without_an_exit_drain_has_the_whole_close_timeout(
    fake_discord: FakeDiscord, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Outside an exit (the application flushes, then closes), each wait has the whole
    ``close_timeout``: no budget is being spent."""
    handler, recorder = recorded_handler(fake_discord, tmp_path, monkeypatch, 3.0)
    handler.flush()
    handler.close()
    assert recorder.waits == [("flush", 3.0), ("stop", 3.0)]
