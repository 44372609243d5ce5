"""`discord-logging --help` and usage errors load none of the heavy dependencies: they are
imported by the commands that use them (the figures are in benchmarks/startup.py)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow  # real processes

HEAVY = ("pydantic", "pydantic_settings", "httpx", "diskcache", "jinja2", "dotenv", "asyncio")

PROBE = f"""
import json, sys
from discord_logging.cli import main
try:
    code = main(sys.argv[1:])
except SystemExit as exc:
    code = exc.code
heavy = {HEAVY!r}
print(json.dumps({{"code": code, "loaded": sorted(m for m in heavy if m in sys.modules)}}))
"""


@pytest.mark.parametrize(
    "argv",
    [["--help"], ["--version"], ["history", "--help"], ["flush", "--help"], ["history", "--bad"]],
)
def test_help_and_usage_errors_import_no_heavy_dependency(argv: list[str]) -> None:
    """Parsing the command line costs only the standard library and the CLI itself."""
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *argv], capture_output=True, text=True, check=True
    )
    result = json.loads(done.stdout.splitlines()[-1])
    assert result["code"] in (0, 2)
    assert result["loaded"] == []
