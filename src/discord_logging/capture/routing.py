"""Which alert type a record is, and which webhook carries that type."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Final

from ..alerts import AlertType, fallback_chain, normalize_alert_type
from ..errors import ConfigurationError
from . import structured

EXTRA_KEY: Final = "alert_type"


class Router:
    """Decides a record's alert type, then the webhook type that carries it.

    Order: ``extra={"alert_type": ...}`` (or loguru's ``bind(alert_type=...)``, or the
    ``alert_type`` key of a structlog event); the longest matching logger-name prefix rule;
    the level (CRITICAL -> critical, ERROR -> error, lower -> general). A type without a
    webhook falls back along critical -> error -> general (custom types straight to general).
    """

    def __init__(self, routes: Mapping[str, str], webhook_types: Iterable[str]) -> None:
        self._webhook_types = frozenset(webhook_types)
        if not self._webhook_types:
            raise ConfigurationError(
                "no Discord webhook is configured: set DISCORD_WEBHOOK_GENERAL to a webhook URL"
            )
        # Longest prefix first, so "app.security.audit" wins over "app.security".
        self._rules = sorted(
            ((prefix, normalize_alert_type(kind)) for prefix, kind in routes.items()),
            key=lambda rule: len(rule[0]),
            reverse=True,
        )
        self._carrier: dict[str, str | None] = {}

    def alert_type(self, record: logging.LogRecord) -> str:
        """The alert type of ``record``; never raises (a bad ``alert_type`` extra is ignored)."""
        return requested_alert_type(record) or self.alert_type_for(record.name, record.levelno)

    def alert_type_for(self, logger_name: str, levelno: int) -> str:
        """The alert type from the logger name rules, else from the level."""
        for prefix, kind in self._rules:
            if logger_name == prefix or logger_name.startswith(prefix + "."):
                return kind
        return level_alert_type(levelno)

    def carrier(self, alert_type: str) -> str | None:
        """The configured webhook type that carries ``alert_type``, or None if none can."""
        if alert_type not in self._carrier:
            self._carrier[alert_type] = next(
                (kind for kind in fallback_chain(alert_type) if kind in self._webhook_types), None
            )
        return self._carrier[alert_type]

    def table(self) -> list[tuple[str, str | None]]:
        """(alert type, carrying webhook type) for the built-in types and every configured one."""
        names = [t.value for t in AlertType]
        names += sorted(self._webhook_types - set(names))
        names += sorted({kind for _, kind in self._rules} - set(names))
        return [(name, self.carrier(name)) for name in names]

    @property
    def rules(self) -> list[tuple[str, str]]:
        """The logger-prefix rules, longest prefix first."""
        return list(self._rules)


def requested_alert_type(record: logging.LogRecord) -> str | None:
    """The alert type the record asks for (``extra``, loguru's ``bind``, a structlog key),
    normalised; None when it asks for none or for a name that is not one. Needs no settings:
    the handler calls it before its settings are loaded."""
    attributes = record.__dict__
    requested = attributes.get(EXTRA_KEY)
    if requested is None and (type(record.msg) is dict or "extra" in attributes):
        requested = _requested_by_library(record)
    if requested is None:
        return None
    try:
        return normalize_alert_type(str(requested))
    except ValueError:
        return None


def level_alert_type(levelno: int) -> str:
    """The alert type by level alone: CRITICAL -> critical, ERROR -> error, lower -> general."""
    if levelno >= logging.CRITICAL:
        return AlertType.CRITICAL.value
    if levelno >= logging.ERROR:
        return AlertType.ERROR.value
    return AlertType.GENERAL.value


def _requested_by_library(record: logging.LogRecord) -> object:
    """The ``alert_type`` a structlog event dict (the record's message) or loguru's bound
    ``extra`` dict carries, if any: see :mod:`.structured`."""
    event = structured.event_of(record)
    carrier = event if event is not None else structured.bound_of(record.__dict__)
    return carrier.get(EXTRA_KEY) if carrier is not None else None
