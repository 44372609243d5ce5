"""One app of a fleet-incident test: logs one problem ``repeats`` times, in ``workers`` forked
children of one handler (gunicorn ``--preload`` style) or in this process alone.

Run as ``python incident_worker.py CONFIG_JSON``; prints one JSON line of stats per process
that logged. Config keys: ``webhook``, ``host``, ``store``, optional ``redis_url``,
``workers`` (0: log here), ``repeats``, ``gap``, ``window``, ``interval``, ``label``, and
``stop`` (a file: each logging process closes once it exists; absent key: at once), ``dies``
(the child of that index is killed, SIGKILL, once it logged: mid-incident), ``distinct``
(that many distinct records logged after the problem, in one loop), ``logged`` (a folder:
each logging process flushes, then makes a file named after itself there), ``drain`` (after
``stop``, wait until the store keeps no letter and the storm went quiet) and ``engine``
(the handler's engine options).
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

from discord_logging import DiscordHandler

FAILSAFE = 60.0


def log_and_close(handler: DiscordHandler, config: dict[str, Any], who: str) -> None:
    log = logging.getLogger("fleet.incident")
    for i in range(int(config["repeats"])):
        # One template, one place: one problem (one fingerprint) whoever logs it.
        log.error("database connection refused (host db-1) from %s attempt %d", who, i)
        time.sleep(float(config.get("gap", 0.01)))
    # When its storm goes quiet: the last repeat's time, a window and an edit interval on.
    quiet_at = time.monotonic() + float(config["window"]) + float(config["interval"])
    for i in range(int(config.get("distinct", 0))):
        log.error(f"order {who}-{i} failed validation")  # a distinct record each
    if config.get("logged"):
        handler.flush(30)  # delivered or kept in the store: what "logged" tells the test
        (Path(config["logged"]) / who).touch()
    if config.get("dies") == who:
        handler.flush(30)  # its count is out (a running update may be), then it dies
        os.kill(os.getpid(), signal.SIGKILL)
    stop = config.get("stop")
    if stop:
        deadline = time.monotonic() + FAILSAFE
        while not Path(stop).exists() and time.monotonic() < deadline:
            time.sleep(0.02)
    deadline = time.monotonic() + FAILSAFE
    while config.get("drain") and time.monotonic() < deadline:
        # Every letter redelivered, and the storm's quiet word said (shown or dropped).
        if not len(handler.dead_letters) and time.monotonic() > quiet_at:
            break
        time.sleep(0.02)
    handler.flush(30)
    handler.close()
    # One write of the whole line: forked siblings share this stdout, and print() under
    # PYTHONUNBUFFERED writes the text and its newline apart, so two lines could interleave.
    # A pipe write of up to PIPE_BUF (4,096) bytes is atomic; a stats line is about 1 KB.
    sys.stdout.flush()
    os.write(sys.stdout.fileno(), (json.dumps({"who": who, **handler.stats()}) + "\n").encode())


def main(config: dict[str, Any]) -> None:
    handler = DiscordHandler(
        webhooks={"error": config["webhook"]},
        allowed_hosts=str(config["host"]),
        store_path=str(config["store"]),
        redis_url=config.get("redis_url"),
        aggregate_window=float(config["window"]),
        incident_edit_interval=float(config["interval"]),
        retry_attempts=int(config.get("retry_attempts", 3)),
        engine_options=config.get("engine"),
    )
    log = logging.getLogger("fleet.incident")
    log.propagate = False
    log.addHandler(handler)
    label = str(config.get("label", "p"))
    workers = int(config.get("workers", 0))
    if not workers:
        log_and_close(handler, config, label)
        return
    children = []
    for n in range(workers):
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                log_and_close(handler, config, f"{label}{n}")
            except BaseException:
                import traceback

                traceback.print_exc()
                code = 1
            finally:
                os._exit(code)
        children.append(pid)
    codes = [os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) for pid in children]
    handler.close()
    sys.exit(max(code for code in codes if code != -signal.SIGKILL))


if __name__ == "__main__":
    main(json.loads(sys.argv[1]))
