"""Every message the library writes for people is one whole line, written in one call: two
handlers failing at once (threads, or processes sharing a terminal) never run their lines
together, as ``print``'s separate write of the newline allows."""

from __future__ import annotations

import io
import re
import sys
from pathlib import Path

import pytest

from discord_logging.wording import write_line

SRC = Path(__file__).resolve().parent.parent / "src" / "discord_logging"
# Modules that still print to stderr, owned by other changes: each is converted to
# ``write_line`` there, and then leaves this set (the test below says when).
NOT_YET_CONVERTED: set[str] = set()
PRINT = re.compile(r"\bprint\(")


class Recording(io.StringIO):
    """A stream that records each write call and counts flushes."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[str] = []
        self.flushes = 0

    def write(self, text: str) -> int:
        self.writes.append(text)
        return super().write(text)

    def flush(self) -> None:
        self.flushes += 1
        super().flush()


def test_a_line_is_one_write_with_its_newline_then_flushed() -> None:
    """write_line hands the line and its newline to the stream in one call, then flushes."""
    stream = Recording()
    write_line("discord-logging: one thing", stream)
    write_line("discord-logging: another", stream)
    assert stream.writes == ["discord-logging: one thing\n", "discord-logging: another\n"]
    assert stream.flushes == 2


def test_the_default_stream_is_stderr_and_none_is_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without a stream the line goes to sys.stderr; with no sys.stderr at all (pythonw),
    nothing is written and nothing raises."""
    stream = Recording()
    monkeypatch.setattr(sys, "stderr", stream)
    write_line("discord-logging: said")
    assert stream.writes == ["discord-logging: said\n"]
    monkeypatch.setattr(sys, "stderr", None)
    write_line("discord-logging: to nobody")


def test_the_library_writes_its_lines_through_write_line() -> None:
    """No module calls print() (two writes) but those not yet converted, and each of those
    still does (so the set shrinks as they are converted)."""
    printing = {
        str(path.relative_to(SRC))
        for path in SRC.rglob("*.py")
        if PRINT.search(path.read_text(encoding="utf-8"))
    }
    assert printing - NOT_YET_CONVERTED == set(), "use discord_logging.wording.write_line"
    assert NOT_YET_CONVERTED - printing == set(), "converted: remove it from NOT_YET_CONVERTED"
