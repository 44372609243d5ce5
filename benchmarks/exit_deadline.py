"""How long an exit waits when Discord takes the request and never answers (issue 19, point 4).

A script logs one record to FakeDiscord (through ``localhost``) and, once the fake holds the
request, ends: normally, or by SIGTERM (the library's drain). Side by side in one run: a
healthy fake (the record is delivered: what the interpreter's own end costs), a fake that
takes the request and never answers (``no_answer``), and one that stalls after the answer's
headers (``stall_body``). Printed: seconds from "end now" to the process gone, and what
became of the record. Run: ``uv run python benchmarks/exit_deadline.py [--close-timeout 2
--timeout 30]``.
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

from _child import clean_env

from discord_logging.store import Store
from discord_logging.testing import FakeDiscord

SCRIPT = """
import logging, os, sys
from discord_logging import DiscordHandler

handler = DiscordHandler(
    webhooks={"general": os.environ["WEBHOOK"]},
    allowed_hosts=os.environ["HOSTS"],
    aggregate_window=0,
    timeout=float(os.environ["TIMEOUT"]),
    close_timeout=float(os.environ["CLOSE_TIMEOUT"]),
)
log = logging.getLogger("app")
log.addHandler(handler)
log.propagate = False
log.error("in flight at the end")
sys.stdin.readline()
"""


def one_exit(
    fake: FakeDiscord, silence: str | None, sigterm: bool, args: argparse.Namespace
) -> str:
    """One row: seconds from the end signal to the process gone, and the record's fate."""
    fake.reset()
    fake.set_silent(silence)  # type: ignore[arg-type]
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "app.py"
        script.write_text(textwrap.dedent(SCRIPT), encoding="utf-8")
        env = clean_env(
            WEBHOOK=fake.add_webhook(webhook_id=1, host="localhost"),
            HOSTS=fake.named_host,
            TIMEOUT=str(args.timeout),
            CLOSE_TIMEOUT=str(args.close_timeout),
            DISCORD_STORE_PATH=str(Path(tmp) / "store"),
        )
        pipe = subprocess.PIPE
        proc = subprocess.Popen([sys.executable, str(script)], env=env, stdin=pipe, stderr=pipe)
        end = time.monotonic() + 30
        while fake.pending == 0 and not fake.messages and time.monotonic() < end:
            time.sleep(0.01)
        started = time.monotonic()
        if sigterm:
            proc.send_signal(signal.SIGTERM)
            proc.communicate()
        else:
            proc.communicate(b"\n")
        took = time.monotonic() - started
        fake.set_silent(None)
        store = Store(Path(tmp) / "store")
        kept = [letter.reason.value for letter in store.dead_letters.letters()]
        store.close()
    fate = "delivered" if fake.messages else f"kept ({', '.join(kept)})" if kept else "LOST"
    return f"{took:6.2f} s  {fate}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--close-timeout", type=float, default=2.0)
    parser.add_argument("--timeout", type=float, default=30.0)
    args = parser.parse_args()
    print(f"close_timeout={args.close_timeout}, timeout={args.timeout}")
    print(f"{'Discord':<12} {'ending':<8} {'exit took':>9}  record")
    with FakeDiscord() as fake:
        for silence in (None, "no_answer", "stall_body"):
            for sigterm in (False, True):
                row = one_exit(fake, silence, sigterm, args)
                ending = "SIGTERM" if sigterm else "exit"
                print(f"{silence or 'healthy':<12} {ending:<8} {row}", flush=True)


if __name__ == "__main__":
    main()
