"""The layout rule of docs/architecture.md: no module under src/ is longer than 450 lines (a
module past it holds two ideas and is split along the seam between them)."""

from __future__ import annotations

from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src"
LIMIT = 450


def test_no_module_is_longer_than_the_limit() -> None:
    """Every .py file under src/ has at most 450 lines; the message names each that has more."""
    modules = sorted(SRC.rglob("*.py"))
    assert modules, f"no modules found under {SRC}"
    too_long = {
        str(path.relative_to(SRC)): lines
        for path in modules
        if (lines := len(path.read_text(encoding="utf-8").splitlines())) > LIMIT
    }
    assert not too_long, f"modules over {LIMIT} lines (split each along a seam): {too_long}"
