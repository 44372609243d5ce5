"""Run the installed ``discord-logging`` console script as a user would, in a subprocess."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys


def console_script() -> str:
    """The path of the installed entry point (the one ``uv run discord-logging`` runs)."""
    exe = shutil.which("discord-logging", path=os.path.dirname(sys.executable))
    assert exe is not None, "the package is not installed with its console script"
    return exe


def run(
    *argv: str, env: dict[str, str] | None = None, unset: tuple[str, ...] = ()
) -> subprocess.CompletedProcess[str]:
    """``discord-logging *argv`` with the test's environment (plus ``env``, minus the
    variables ``unset``); never raises."""
    environ = {k: v for k, v in os.environ.items() if k not in unset}
    return subprocess.run(
        [console_script(), *argv],
        capture_output=True,
        text=True,
        check=False,
        env={**environ, **(env or {})},
        timeout=120,
    )
