"""What the demo prints reads well in a terminal: in-process, against its own FakeDiscord."""

from __future__ import annotations

import io
import re
from pathlib import Path

from discord_logging.cli.demo import run_demo


def test_the_quick_demo_prints_no_discord_markup_and_says_what_the_outage_kept(
    tmp_path: Path,
) -> None:
    """The quick demo loses nothing; what it prints shows times as times (no ``<t:...>``, no
    ``**``), says how many records the outage kept (never "after 0 retries") and counts the
    edits in words when there are some ("edited 1 time", "edited 2 times")."""
    out = io.StringIO()
    report = run_demo(quick=True, store_path=tmp_path / "store", out=out)
    printed = out.getvalue()
    assert report.lost == 0
    assert "<t:" not in printed
    assert "**" not in printed
    assert "after 0 retries" not in printed
    assert re.search(r"^\[.*\] outage over: \d+ records? kept in the store", printed, re.M), printed
    # Whether the incident's message was edited within the quick demo's compressed minute
    # depends on the machine's load (seen: none on a loaded 3.13 run); how it is said does not.
    for count, word in re.findall(r"edited (\d+) (times?): ", printed):
        assert (word == "time") == (count == "1"), printed
