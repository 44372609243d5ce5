"""Pure text fitting: lengths, cutting, tails, fences, mentions, sanitising."""

from __future__ import annotations

import pytest

from discord_logging.render.message_limits import embed_length, text_length
from discord_logging.render.text import (
    MARKER,
    ZWSP,
    clean,
    code_block,
    cut_head,
    cut_tail,
    escape_fences,
    neutralize_mentions,
    sanitize,
)


@pytest.mark.parametrize(
    ("text", "units"), [("", 0), ("abc", 3), ("é", 1), ("😀", 2), ("a😀b", 4), ("\u200b", 1)]
)
def test_text_length_counts_utf16_units(text: str, units: int) -> None:
    """Astral characters count twice: the conservative reading of Discord's limits."""
    assert text_length(text) == units


def test_cut_head_keeps_start_and_marks_the_cut() -> None:
    """A cut ends with the marker and never exceeds the limit."""
    assert cut_head("hello", 10) == "hello"
    assert cut_head("hello world", 6) == "hello" + MARKER
    assert cut_head("hello", 0) == ""
    assert text_length(cut_head("😀" * 10, 5)) <= 5
    assert cut_head("😀😀😀", 4) == "😀" + MARKER


def test_cut_never_splits_a_surrogate_pair() -> None:
    """Cutting by code point: an emoji is kept whole or dropped."""
    out = cut_head("a" + "😀" * 5, 3)
    assert out == "a" + MARKER


def test_cut_tail_keeps_the_end() -> None:
    """Tracebacks keep their last lines, starting at a line boundary when near."""
    text = "\n".join(f"line {i}" for i in range(100))
    out = cut_tail(text, 40)
    assert out.startswith(MARKER)
    assert out.endswith("line 99")
    assert text_length(out) <= 40
    assert cut_tail("short", 10) == "short"
    assert cut_tail("abcdef", 0) == ""
    assert text_length(cut_tail("x" * 100, 1)) == 1


def test_fences_cannot_be_closed_by_log_text() -> None:
    """Triple backticks in log text are broken with zero-width spaces."""
    assert "```" not in escape_fences("a ``` b ```")
    block = code_block("evil ```\nmore", 100)
    assert block.startswith("```py\n")
    assert block.endswith("\n```")
    assert block.count("```") == 2
    assert code_block("x", 10) == ""


def test_code_block_keeps_tail_within_limit() -> None:
    """A long body is cut from the top and the block stays within its limit."""
    body = "\n".join(f"frame {i}" for i in range(1000)) + "\nValueError: the end"
    block = code_block(body, 200)
    assert text_length(block) <= 200
    assert "ValueError: the end\n```" in block


@pytest.mark.parametrize(
    "text", ["@everyone", "@here", "<@123>", "<@!123>", "<@&456>", "hi @everyone and <@&1>"]
)
def test_mentions_are_neutralized(text: str) -> None:
    """Every mention form is broken by a zero-width space after the @."""
    out = neutralize_mentions(text)
    assert "@everyone" not in out
    assert "@here" not in out
    assert "<@1" not in out
    assert "<@&" not in out
    assert "<@!" not in out
    assert out.replace(ZWSP, "") == text


def test_plain_at_signs_are_left_alone() -> None:
    """E-mail addresses and decorators are not mangled."""
    assert neutralize_mentions("mail a@b.c @decorator") == "mail a@b.c @decorator"


def test_sanitize_replaces_lone_surrogates_and_nul() -> None:
    """Text that cannot be encoded as UTF-8 JSON is repaired, not rejected."""
    out = sanitize("a\ud800b\x00c😀")
    assert out == "a\ufffdbc😀"
    out.encode("utf-8")
    assert clean("```@here\ud800") == f"`{ZWSP}`{ZWSP}`@{ZWSP}here\ufffd"


def test_embed_length_sums_counted_parts() -> None:
    """title, description, field names/values, footer and author count; other keys do not."""
    embed = {
        "title": "ab",
        "description": "c",
        "fields": [{"name": "d", "value": "ef"}],
        "footer": {"text": "g"},
        "author": {"name": "h"},
        "color": 123456,
        "url": "https://x",
    }
    assert embed_length(embed) == 8
