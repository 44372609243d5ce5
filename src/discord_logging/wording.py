"""Messages people read: counting in them ("1 dead letter", "2 dead letters", "1 entry"), the
name a typo most likely meant, and writing one as a whole line."""

from __future__ import annotations

import difflib
import sys
from collections.abc import Iterable
from typing import Final, TextIO

TYPO_CUTOFF: Final = 0.75  # how alike a name must be to a known one to be called its typo


def closest(name: str, candidates: Iterable[str]) -> str | None:
    """The one of ``candidates`` that ``name`` is most likely a typo of, or None."""
    close = difflib.get_close_matches(name, sorted(candidates), n=1, cutoff=TYPO_CUTOFF)
    return close[0] if close else None


def plural(count: int, noun: str, many: str | None = None) -> str:
    """``noun`` as ``count`` wants it: the singular for exactly one, else ``many`` (by default
    ``noun`` + "s"): ``plural(2, "entry", "entries")`` is "entries"."""
    return noun if count == 1 else (many or noun + "s")


def counted(count: int, noun: str, many: str | None = None) -> str:
    """``count`` and its noun: ``counted(1, "dead letter")`` is "1 dead letter"."""
    return f"{count} {plural(count, noun, many)}"


def write_line(line: str, stream: TextIO | None = None) -> None:
    """Write ``line`` and its newline to ``stream`` (stderr when None) in one ``write`` call,
    then flush: two handlers (threads or processes sharing the stream) failing at once give
    two whole lines, never one line run into the other, as ``print``'s separate write of the
    newline allows. Nothing is written when there is no stream (``sys.stderr`` is None under
    pythonw)."""
    target = stream if stream is not None else sys.stderr
    if target is None:
        return
    target.write(line + "\n")
    target.flush()
