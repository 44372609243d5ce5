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


def redact(text: str) -> str:
    """Replace every webhook token in ``text`` with ``***`` (``.../webhooks/<id>/***``)."""
    return _TOKEN_IN_PATH.sub(lambda m: m.group(1) + REDACTED, text)
