"""Pure text fitting for Discord: sanitising, cutting by code point, keeping tails, fences.

Lengths are counted as :func:`limits.text_length` (UTF-16 units, the conservative count).
"""

from __future__ import annotations

import re
import unicodedata
from typing import Final

from .message_limits import text_length

MARKER: Final = "…"
ZWSP: Final = "\u200b"
FENCE: Final = "```"
BLANK_TITLE: Final = "(blank log message)"
_ESCAPED_FENCE: Final = f"`{ZWSP}`{ZWSP}`"
# Mass mentions and id mentions; embeds never ping, but content can, and text is shown verbatim.
_SURROGATE: Final = re.compile("[\ud800-\udfff]")
_MENTION: Final = re.compile(r"@(everyone|here)|<@([!&]?)(\d+)>")
# Characters that show nothing though they are not whitespace to str.strip(): fillers people
# paste as "blank" text. Format characters (Cf: zero-width space, joiners, BOM...) come on top.
_INVISIBLE: Final = frozenset("\u034f\u115f\u1160\u17b4\u17b5\u2800\u3164\uffa0")
# Bidirectional controls: embeddings and overrides (U+202A-U+202E), isolates (U+2066-U+2069),
# the marks (U+200E, U+200F, U+061C). Invisible themselves, they reorder what follows: a
# log line with U+202E shows "exe.txt" for "txt.exe" and can turn an alert's text around
# (the "Trojan Source" trick, CVE-2021-42574). Removed, like NUL, wherever log text is shown.
_BIDI: Final = re.compile("[\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c]")


# Every line break str.splitlines() knows (the fields block is read line by line), and tabs.
_BREAKS: Final = re.compile("[\t\n\v\f\r\x1c-\x1e\x85\u2028\u2029]+")
# Other control characters (C0, DEL, C1) and the bidirectional controls: removed.
_CONTROLS: Final = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c]")
NO_BREAK_SPACE: Final = "\u00a0"


def single_line(text: str) -> str:
    """``text`` fit for an embed's title or a field (docs/architecture.md, "Untrusted input",
    rule 2): each run of line breaks (every kind) or tabs becomes one space; other control
    characters and bidirectional controls are removed; lone surrogates become U+FFFD."""
    if text.isprintable():  # the common case: nothing to do (bidi controls are not printable)
        return text
    return sanitize(_CONTROLS.sub("", _BREAKS.sub(" ", text)))


def field_name(text: str) -> str:
    """``text`` as a field's name in the fields block (``Name: value`` a line):
    :func:`single_line`, with each ``": "`` written with a no-break space instead (it shows
    the same, and cannot end the name early), and ``-`` for a name that would be blank."""
    name = single_line(text).replace(": ", ":" + NO_BREAK_SPACE)
    return name if name.strip() else "-"


def sanitize(text: str) -> str:
    """Make ``text`` safe to serialise and show: lone surrogates become U+FFFD; NULs and
    bidirectional controls are removed."""
    if not text.isascii():
        # A Python str holds code points, so any surrogate in it is a lone one.
        text = _BIDI.sub("", _SURROGATE.sub("\ufffd", text))
    return text.replace("\x00", "")


def is_blank(text: str) -> bool:
    """Whether ``text`` shows nothing: only whitespace, control, format (zero-width, BOM) or
    filler characters. Discord trims text and then needs at least one character; we count
    invisible ones as trimmed too, so what we send always shows something."""
    for char in text:
        if char.isspace() or char in _INVISIBLE:
            continue
        if unicodedata.category(char) not in ("Cc", "Cf", "Zs", "Zl", "Zp"):
            return False
    return True


def visible(text: str, placeholder: str = "") -> str:
    """``text`` when it shows something, else ``placeholder`` ("" means: leave the part out)."""
    return placeholder if is_blank(text) else text


def blank_safe_title(title: str, message: str, alert_type: str) -> str:
    """An embed title that shows something: ``title``, else a clear word for a blank record."""
    if not is_blank(title):
        return title
    return BLANK_TITLE if is_blank(message) else alert_type


def neutralize_mentions(text: str) -> str:
    """Break ``@everyone``, ``@here``, ``<@id>``, ``<@&id>`` so they show but can never ping."""
    if "@" not in text:
        return text
    return _MENTION.sub(lambda m: m.group(0).replace("@", "@" + ZWSP, 1), text)


def escape_fences(text: str) -> str:
    """Stop log text from opening or closing a code block the embed relies on."""
    return text.replace(FENCE, _ESCAPED_FENCE) if FENCE in text else text


def clean(text: str) -> str:
    """Everything a piece of log text needs before it goes into an embed."""
    return escape_fences(neutralize_mentions(sanitize(text)))


def cut_head(text: str, limit: int, marker: str = MARKER) -> str:
    """Keep the start of ``text`` within ``limit`` units, ending with ``marker`` if cut."""
    if text_length(text) <= limit:
        return text
    if limit <= 0:
        return ""
    budget = limit - text_length(marker)
    if budget <= 0:
        return marker[:limit]
    return _take_units(text, budget) + marker


def cut_tail(text: str, limit: int, marker: str = MARKER) -> str:
    """Keep the end of ``text`` within ``limit`` units, starting with ``marker`` if cut.

    Tracebacks are cut this way: the exception line and the last frames matter most.
    """
    if text_length(text) <= limit:
        return text
    if limit <= 0:
        return ""
    budget = limit - text_length(marker)
    if budget <= 0:
        return marker[:limit]
    kept = _take_units(text[::-1], budget)[::-1]
    # Start at a line boundary when one is near, so the first frame shown is whole.
    newline = kept.find("\n")
    if 0 <= newline < len(kept) // 4:
        kept = kept[newline + 1 :]
    return (
        marker + "\n" + kept
        if text_length(marker) + 1 + text_length(kept) <= limit
        else marker + kept
    )


def _take_units(text: str, budget: int) -> str:
    """The longest prefix of ``text`` whose UTF-16 length is at most ``budget``."""
    candidate = text[:budget]
    excess = text_length(candidate) - budget
    while excess > 0:
        # Each character dropped frees one or two units, so this ends within a few rounds.
        candidate = candidate[: len(candidate) - (excess + 1) // 2]
        excess = text_length(candidate) - budget
    return candidate


def code_block(body: str, limit: int, language: str = "py") -> str:
    """``body`` in a fenced block of at most ``limit`` units, its tail kept; "" if none fits."""
    opening = f"{FENCE}{language}\n"
    closing = f"\n{FENCE}"
    room = limit - text_length(opening) - text_length(closing)
    if room < 20:
        return ""
    return opening + cut_tail(escape_fences(body), room) + closing
