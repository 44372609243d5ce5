"""Webhook tokens never leave the process: every text we show passes through here."""

from __future__ import annotations

import re
from typing import Final

# A token is what follows /webhooks/<id>/ up to the next delimiter.  Match generously so that
# a token with unexpected characters is still hidden.
# JSON may escape the slashes ("\/webhooks\/1\/token"), so both spellings are matched.
_TOKEN_IN_PATH: Final = re.compile(
    r"((?:/|\\/)webhooks(?:/|\\/)[^/\\\s?#\"'<>]+(?:/|\\/))[^/\\\s?#\"'<>&),;]+"
)
REDACTED: Final = "***"


def hide_parts(text: str, secret: str) -> str:
    """``text`` with every piece of ``secret`` (a URL with a password: its words between
    ``:/@?#`` and the whole of it) replaced by ``***``: a parser's error may quote a fragment
    of a password it split in the wrong place."""
    pieces = {secret, *re.split(r"[:/@?#]+", secret)}
    for piece in sorted((p for p in pieces if len(p) >= 3), key=len, reverse=True):
        text = text.replace(piece, REDACTED)
    return redact(text)


def redact(text: str) -> str:
    """Replace every webhook token in ``text`` with ``***`` (``.../webhooks/<id>/***``)."""
    return _TOKEN_IN_PATH.sub(lambda m: m.group(1) + REDACTED, text)
