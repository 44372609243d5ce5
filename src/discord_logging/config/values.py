"""The kinds of value a setting takes (whole numbers, numbers, true/false, paths, text) and
how each is read from what the user gave: a keyword's Python value or a variable's text.

Pure and light (the standard library only): the handler validates its settings on the
caller's thread, inside ``dictConfig``, where nothing heavy may be imported
(docs/architecture.md, "Start-up"). Each reader raises ValueError with the value as given
(cut to 40 characters) and what is allowed, in the library's words.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

_TRUE: Final = frozenset({"1", "on", "t", "true", "y", "yes"})
_FALSE: Final = frozenset({"0", "off", "f", "false", "n", "no"})
FALSE_WORDS: Final = _FALSE


def shown(value: Any) -> str:
    """The value as an error shows it: its repr, cut to 40 characters."""
    text = str(value)
    return repr(value if len(text) <= 40 else text[:39] + "…")


@dataclass(frozen=True, slots=True)
class Number:
    """A whole number (``whole``) or a number, within bounds: ``low`` (excluded when
    ``low_open``) and ``high`` (included)."""

    whole: bool
    low: float | None = None
    high: float | None = None
    low_open: bool = False

    def read(self, value: Any) -> int | float:
        """``value`` as this kind of number, or ValueError saying what is allowed."""
        number = self._parse(value)
        if number is None or not self._within(number):
            raise ValueError(f"{shown(value)} is not {self.allowed}{self._fraction_note(value)}")
        return number

    @property
    def allowed(self) -> str:
        """What this kind accepts, in words: ``a whole number from 1 to 20``."""
        kind = "a whole number" if self.whole else "a number"
        low = self.low
        low_words = "greater than" if self.low_open else "at least"
        if low is not None and self.low_open and self.whole:
            low, low_words = low + 1, "at least"  # "greater than 0" of a whole number
        if low is not None and low_words == "at least" and self.high is not None:
            return f"{kind} from {_number(low)} to {_number(self.high)}"
        bounds = []
        if low is not None:
            bounds.append(f"{low_words} {_number(low)}")
        if self.high is not None:
            bounds.append(f"at most {_number(self.high)}")
        joined = " and ".join(bounds)
        return f"{kind} of {joined}" if joined.startswith("at least") else f"{kind} {joined}"

    def _parse(self, value: Any) -> int | float | None:
        if isinstance(value, bool):
            return None
        if isinstance(value, int | float):
            number: float = value
        elif isinstance(value, str):
            text = value.strip()
            try:
                number = int(text) if self.whole else float(text)
            except ValueError:
                try:
                    number = float(text)
                except ValueError:
                    return None
        else:
            return None
        if isinstance(number, float) and not math.isfinite(number):
            return None
        if self.whole:
            if isinstance(number, float) and not number.is_integer():
                return None
            return int(number)
        return float(number)

    def _within(self, number: float) -> bool:
        if self.low is not None and (number <= self.low if self.low_open else number < self.low):
            return False
        return self.high is None or number <= self.high

    def _fraction_note(self, value: Any) -> str:
        if not self.whole or isinstance(value, bool):
            return ""
        try:
            fractional = not float(value).is_integer()
        except (TypeError, ValueError, OverflowError):
            return ""
        return " (fractions are refused)" if fractional else ""


def read_flag(value: Any) -> bool:
    """True or false, from a bool or the usual words (``yes``, ``off``, ``1``)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    text = str(value).strip().lower() if isinstance(value, str) else None
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(f"{shown(value)} is not true or false")


def read_path(value: Any) -> Path | None:
    """A filesystem path (``~`` is not expanded, as the shell already did); blank is unset."""
    if isinstance(value, str | os.PathLike):
        text = os.fspath(value)
        if isinstance(text, str):
            return Path(text) if text.strip() else None
    raise ValueError(f"{shown(value)} is not a path")


def read_text(value: Any) -> str:
    """Text, as given."""
    if isinstance(value, str):
        return value
    raise ValueError(f"{shown(value)} is not text")


def _number(value: float) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)
