"""Alert types: the six built in and any custom name a user routes to its own webhook."""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Final


class AlertType(StrEnum):
    """The built-in alert types. Custom types are plain lower-case names (``"billing"``)."""

    GENERAL = "general"
    ERROR = "error"
    CRITICAL = "critical"
    TRACKLIST = "tracklist"
    MONITORING = "monitoring"
    SECURITY = "security"


# Environment variable suffixes that name a built-in type differently (DISCORD_WEBHOOK_ERRORS).
ALIASES: Final = {"errors": AlertType.ERROR.value}

COLORS: Final = {
    AlertType.GENERAL.value: 0x3498DB,
    AlertType.ERROR.value: 0xE67E22,
    AlertType.CRITICAL.value: 0xE74C3C,
    AlertType.TRACKLIST.value: 0x2ECC71,
    AlertType.MONITORING.value: 0x9B59B6,
    AlertType.SECURITY.value: 0xF39C12,
}
DEFAULT_CUSTOM_COLOR: Final = 0x95A5A6

# Where a type without its own webhook goes; custom types fall back to general.
FALLBACK: Final = {
    AlertType.CRITICAL.value: AlertType.ERROR.value,
    AlertType.ERROR.value: AlertType.GENERAL.value,
}

_NAME: Final = re.compile(r"[a-z][a-z0-9_]{0,39}")


def normalize_alert_type(name: str | AlertType) -> str:
    """Return the canonical name of an alert type, or raise ``ValueError`` saying how to fix it."""
    text = str(name).strip().lower().replace("-", "_")
    text = ALIASES.get(text, text)
    if not _NAME.fullmatch(text):
        raise ValueError(
            f"alert type {str(name)[:60]!r} is not a valid name: use letters, digits and "
            "underscores, starting with a letter (at most 40 characters)"
        )
    return text


def fallback_chain(alert_type: str) -> list[str]:
    """The types tried in order for ``alert_type``: itself, then critical -> error -> general."""
    chain = [alert_type]
    current = alert_type
    while current != AlertType.GENERAL.value:
        current = FALLBACK.get(current, AlertType.GENERAL.value)
        chain.append(current)
    return chain
