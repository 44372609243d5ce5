"""A fresh process the test waits on step by step: start-up tests (issue 27).

A fresh interpreter is what a user's first second looks like: the handler's worker is still
importing while the script goes on. Each step has a generous failsafe (the machine is shared
and often busy); a step that never comes fails the test with the process's output so far,
never with a timed assertion.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from types import TracebackType
from typing import Final

import pytest
from processkit import write_script
from waiting import wait_for

FAILSAFE: Final = 30.0  # seconds; the bugs of issue 27 took 60-70 s (212 s for runserver)


class FreshProcess:
    """``PRELUDE + body`` run as ``tmp / name``; the script marks its steps by touching files
    in its working directory (``Path("configured").touch()``) and waits on its stdin when
    told to (``sys.stdin.readline()``). Killed at the end of the ``with`` block if still
    running."""

    def __init__(self, body: str, env: dict[str, str], tmp: Path, name: str = "app.py") -> None:
        self.tmp = tmp
        path = write_script(body, tmp, name)
        self.out_path, self.err_path = tmp / f"{name}.out", tmp / f"{name}.err"
        self.out = self.out_path.open("wb")
        self.err = self.err_path.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, str(path)],
            env=env,
            cwd=tmp,
            stdin=subprocess.PIPE,
            stdout=self.out,
            stderr=self.err,
        )

    def __enter__(self) -> FreshProcess:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(FAILSAFE)
        if self.process.stdin is not None:
            self.process.stdin.close()
        self.out.close()
        self.err.close()

    def output(self) -> str:
        """What the process wrote so far, stdout then stderr, for an assertion's message."""
        return f"--- stdout:\n{self.stdout()[-3000:]}\n--- stderr:\n{self.stderr()[-3000:]}"

    def stdout(self) -> str:
        return self.out_path.read_text(errors="replace")

    def stderr(self) -> str:
        return self.err_path.read_text(errors="replace")

    def reach(self, mark: str, failsafe: float = FAILSAFE) -> None:
        """Wait until the script touched ``mark``; fail (with its output) if it did not within
        ``failsafe`` seconds or ended first."""
        if not wait_for(
            lambda: (self.tmp / mark).exists() or self.process.poll() is not None, failsafe
        ):
            pytest.fail(f"no {mark!r} within {failsafe:.0f} s (still running)\n{self.output()}")
        if not (self.tmp / mark).exists():
            pytest.fail(f"ended ({self.process.returncode}) before {mark!r}\n{self.output()}")

    def finish(self, failsafe: float = FAILSAFE) -> int:
        """Tell the script to go on (a line on its stdin) and wait for its end; its status."""
        assert self.process.stdin is not None
        try:
            self.process.stdin.write(b"go\n")
            self.process.stdin.flush()
        except BrokenPipeError:
            pass  # it ended already
        try:
            return self.process.wait(failsafe)
        except subprocess.TimeoutExpired:
            pytest.fail(f"did not end within {failsafe:.0f} s of being told to\n{self.output()}")
