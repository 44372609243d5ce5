"""The processes of ``fleet.py``: application workers that log, and the process that runs next.

Each runs in its own process (forked from the benchmark or spawned), writes its stderr to a
file in the row's directory (the parent summarises it) and its counters to a JSON file there.
Nothing here talks to Discord directly: everything goes through ``DiscordHandler``.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

from discord_logging import DiscordHandler

RECORD_FORMAT = "fleet p%02d r%04d: order %d failed, card declined (worker %d of %d)"
PROBE_TEXT = "fleet next-process start (not counted)"
CHILD_FLUSH = 60.0  # what each worker gives handler.flush() before close()


def record_args(proc: int, index: int, procs: int) -> tuple[int, int, int, int, int]:
    """The arguments of ``RECORD_FORMAT`` for record ``index`` of process ``proc``."""
    return (proc, index, index, proc + 1, procs)


def _redirect_stderr(path: Path) -> None:
    """Send this process's fd 2 (and ``sys.stderr``) to ``path``: the library's one-line
    notices are summarised by the parent, not interleaved with its table."""
    sys.stderr.flush()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.dup2(fd, 2)
    os.close(fd)


def _app_logger(proc: int, handler: logging.Handler) -> logging.Logger:
    logger = logging.getLogger(f"fleet.app.p{proc:02d}")
    logger.handlers[:] = [handler]
    logger.propagate = False
    logger.setLevel(logging.ERROR)
    return logger


def _log_and_leave(
    proc: int,
    procs: int,
    records: int,
    handler: DiscordHandler,
    start: tuple[Any, Any],
    out_dir: Path,
    built_in: float,
) -> None:
    """What every application worker does: say it is ready, wait for the start (all workers
    log at once), log, flush, close."""
    logger = _app_logger(proc, handler)
    ready, go = start
    ready.release()
    go.wait(300)
    started = time.monotonic()
    for i in range(records):
        logger.error(RECORD_FORMAT, *record_args(proc, i, procs))
    emitted = time.monotonic()
    flushed = handler.flush(CHILD_FLUSH)
    after_flush = time.monotonic()
    handler.close()
    closed = time.monotonic()
    report = {
        "proc": proc,
        "pid": os.getpid(),
        "handler_build_seconds": built_in,
        "emit_seconds": emitted - started,
        "flush_ok": flushed,
        "flush_seconds": after_flush - emitted,
        "close_seconds": closed - after_flush,
        "closed_at": time.time(),
        "stats": handler.stats(),
    }
    (out_dir / f"result-p{proc:02d}.json").write_text(json.dumps(report, default=str))


def run_forked(
    proc: int,
    procs: int,
    records: int,
    handler: DiscordHandler,
    start: tuple[Any, Any],
    out_dir: str,
) -> None:
    """A worker forked from the benchmark: ``handler`` was built before the fork (like
    ``gunicorn --preload``); the library's fork hook gives this child its own worker."""
    where = Path(out_dir)
    _redirect_stderr(where / f"stderr-{proc:02d}.txt")
    try:
        _log_and_leave(proc, procs, records, handler, start, where, 0.0)
    finally:
        sys.stderr.flush()


def run_spawned(
    proc: int,
    procs: int,
    records: int,
    settings: dict[str, Any],
    env: dict[str, str],
    start: tuple[Any, Any],
    out_dir: str,
) -> None:
    """A worker started fresh (spawn): it builds its own handler from the keywords and the
    environment, as a worker of ``gunicorn`` without ``--preload`` does."""
    where = Path(out_dir)
    _redirect_stderr(where / f"stderr-{proc:02d}.txt")
    os.environ.update(env)
    try:
        began = time.monotonic()
        handler = DiscordHandler(**settings)
        _log_and_leave(proc, procs, records, handler, start, where, time.monotonic() - began)
    finally:
        sys.stderr.flush()


def run_next(
    name: str,
    settings: dict[str, Any],
    env: dict[str, str],
    done: Any,
    deadline_seconds: float,
    out_dir: str,
) -> None:
    """The process that runs after the fleet exited (a restarted worker): it builds a handler
    on the same store and logs one line of its own, which starts its worker; the library
    should then redeliver the dead letters the fleet left. Ends when the parent has seen
    every record (``done``), when the store holds no dead letter, or at the deadline."""
    where = Path(out_dir)
    _redirect_stderr(where / f"stderr-{name}.txt")
    os.environ.update(env)
    deadline = time.monotonic() + deadline_seconds
    try:
        handler = DiscordHandler(**settings)
        kept_at_start = len(handler.dead_letters)
        logger = _app_logger(99, handler)
        logger.error(PROBE_TEXT)
        while time.monotonic() < deadline and not done.is_set():
            if len(handler.dead_letters) == 0 and handler.flush(0.5):
                break
            done.wait(0.5)
        handler.flush(max(0.0, min(10.0, deadline - time.monotonic())))
        handler.close()
        report = {
            "name": name,
            "pid": os.getpid(),
            "dead_letters_at_start": kept_at_start,
            "stats": handler.stats(),
        }
        (where / f"result-{name}.json").write_text(json.dumps(report, default=str))
    finally:
        sys.stderr.flush()
