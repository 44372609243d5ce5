"""Webhook tokens never leave the process: every text we show passes through here."""

from __future__ import annotations

import re
from typing import Final

# A token is what follows /webhooks/<id>/ up to the next delimiter.  Match generously so that
# a token with unexpected characters is still hidden.  The slashes may be written encoded:
# JSON-escaped ("\/", "\u002f") or percent-encoded, once or twice ("%2F", "%252F": a webhook
# URL passed in another URL's query).  The id stops at "%" (an encoded slash follows it); the
# token does not (hiding what follows it in an encoded query is harmless).
_SLASH: Final = r"(?:/|\\/|\\u002[fF]|%(?:25)*2[fF])"
_TOKEN_IN_PATH: Final = re.compile(
    rf"({_SLASH}webhooks{_SLASH}[^/\\\s?#%\"'<>]+{_SLASH})[^/\\\s?#\"'<>&),;]+"
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
