"""Counting in messages people read: "1 dead letter", "2 dead letters", "1 entry"."""

from __future__ import annotations


def plural(count: int, noun: str, many: str | None = None) -> str:
    """``noun`` as ``count`` wants it: the singular for exactly one, else ``many`` (by default
    ``noun`` + "s"): ``plural(2, "entry", "entries")`` is "entries"."""
    return noun if count == 1 else (many or noun + "s")


def counted(count: int, noun: str, many: str | None = None) -> str:
    """``count`` and its noun: ``counted(1, "dead letter")`` is "1 dead letter"."""
    return f"{count} {plural(count, noun, many)}"
