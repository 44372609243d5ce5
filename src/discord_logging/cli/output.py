"""Printing for people (aligned tables) and for scripts (JSON), always redacted."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any, TextIO

from ..redaction import redact
from ..wording import write_line


def emit_json(data: Any, stream: TextIO | None = None) -> None:
    """Print ``data`` as JSON on one document, tokens redacted."""
    text = json.dumps(data, indent=2, sort_keys=True, default=str, ensure_ascii=False)
    write_line(redact(text), stream or sys.stdout)


def table(rows: Sequence[Sequence[object]], headers: Sequence[str]) -> str:
    """An aligned plain-text table."""
    cells = [[str(h) for h in headers]] + [
        ["" if c is None else str(c) for c in row] for row in rows
    ]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = [
        "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip() for row in cells
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return redact("\n".join(lines))


def say(text: str, stream: TextIO | None = None) -> None:
    """Print a line for people, tokens redacted, in one write (see :func:`write_line`)."""
    write_line(redact(text), stream or sys.stdout)
