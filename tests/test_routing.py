"""Alert type routing: extra, logger-name rules, level, and webhook fallback."""

from __future__ import annotations

import logging

import pytest

from discord_logging.alerts import AlertType, fallback_chain, normalize_alert_type
from discord_logging.capture.routing import Router
from discord_logging.errors import ConfigurationError


def record(name: str = "app", level: int = logging.INFO, **extra: object) -> logging.LogRecord:
    rec = logging.LogRecord(name, level, __file__, 1, "msg", None, None)
    rec.__dict__.update(extra)
    return rec


ALL = [t.value for t in AlertType]


@pytest.mark.parametrize(
    ("level", "expected"),
    [
        (logging.DEBUG, "general"),
        (logging.INFO, "general"),
        (logging.WARNING, "general"),
        (logging.ERROR, "error"),
        (logging.CRITICAL, "critical"),
        (logging.CRITICAL + 5, "critical"),
    ],
)
def test_level_decides_without_rules(level: int, expected: str) -> None:
    """CRITICAL -> critical, ERROR -> error, lower -> general."""
    assert Router({}, ALL).alert_type(record(level=level)) == expected


def test_extra_wins_over_rules_and_level() -> None:
    """extra={'alert_type': ...} is first; a bad value is ignored, not raised."""
    router = Router({"app": "tracklist"}, ALL)
    assert router.alert_type(record(level=logging.CRITICAL, alert_type="security")) == "security"
    assert router.alert_type(record(alert_type=AlertType.MONITORING)) == "monitoring"
    assert router.alert_type(record(alert_type="Billing-Team")) == "billing_team"
    assert router.alert_type(record(alert_type="!!bad")) == "tracklist"
    assert router.alert_type(record(alert_type="errors")) == "error"


def test_longest_logger_prefix_wins_on_dotted_boundaries() -> None:
    """Rules match the logger or its children, longest prefix first, never a partial word."""
    router = Router({"myapp": "monitoring", "myapp.security": "security"}, ALL)
    assert router.alert_type(record("myapp.security.audit")) == "security"
    assert router.alert_type(record("myapp.security")) == "security"
    assert router.alert_type(record("myapp.securityx")) == "monitoring"
    assert router.alert_type(record("myapp")) == "monitoring"
    assert router.alert_type(record("other", logging.ERROR)) == "error"


def test_fallback_chain() -> None:
    """critical -> error -> general; custom types fall back to general."""
    assert fallback_chain("critical") == ["critical", "error", "general"]
    assert fallback_chain("error") == ["error", "general"]
    assert fallback_chain("general") == ["general"]
    assert fallback_chain("billing") == ["billing", "general"]


def test_carrier_follows_the_fallback() -> None:
    """A type without a webhook goes to the next configured one; None when nothing can carry it."""
    router = Router({}, ["error", "security"])
    assert router.carrier("critical") == "error"
    assert router.carrier("error") == "error"
    assert router.carrier("security") == "security"
    assert router.carrier("general") is None
    assert router.carrier("tracklist") is None
    only_general = Router({}, ["general"])
    assert only_general.carrier("critical") == "general"
    assert only_general.carrier("billing") == "general"


def test_route_table_lists_builtin_custom_and_routed_types() -> None:
    """The table shows every type a user could see, with its carrier."""
    router = Router({"pay": "payments"}, ["general", "billing"])
    table = dict(router.table())
    assert table["critical"] == "general"
    assert table["billing"] == "billing"
    assert table["payments"] == "general"
    assert router.rules == [("pay", "payments")]


def test_no_webhook_refuses_to_start() -> None:
    """A router without webhooks cannot be built."""
    with pytest.raises(ConfigurationError, match="DISCORD_WEBHOOK_GENERAL"):
        Router({}, [])


@pytest.mark.parametrize("bad", ["", "1abc", "a b", "x" * 41, "ünï"])
def test_invalid_alert_type_names(bad: str) -> None:
    """Alert type names are identifiers; the error says what is allowed."""
    with pytest.raises(ValueError, match="letters, digits and underscores"):
        normalize_alert_type(bad)
