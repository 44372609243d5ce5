"""Configuration from ``DISCORD_*`` environment variables, a ``.env`` file, or keyword arguments.

Every invalid value fails where the user configured, with one message naming the setting the
way it was given (``rate_limit``, ``DISCORD_RATE_LIMIT``, ``DISCORD_RATE_LIMIT (.env line 3)``),
the problem and the fix. Webhook URLs and the Redis URL are kept as secrets: they never appear
in a repr, a message or an exception.

Validated by hand, not by pydantic: the handler loads its settings on the caller's thread,
inside ``dictConfig``, which holds logging's lock; an import there must be light and must not
call into logging from another thread (docs/architecture.md, "Start-up", has the figures).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from .capture.tracing import check_trace_url_template
from .config import alert_options as alert_settings
from .config import checks
from .config.alert_options import LinkButton
from .config.sources import (
    ENV_PREFIX,
    WEBHOOK_PREFIX,
    Given,
    Place,
    SecretFile,
    dotenv,
    environment,
    gather,
    gather_webhooks,
    resolve_webhooks,
    webhook_variable,
)
from .config.values import Number, read_flag, read_path, read_text
from .errors import ConfigurationError
from .muting.quiet import QuietHours, parse_quiet_hours
from .redaction import redact
from .transport.webhook_url import WebhookURL, normalize_hosts, parse_webhook_url
from .wording import closest, plural

__all__ = [
    "ENV_PREFIX",
    "FIELD_NAMES",
    "WEBHOOK_PREFIX",
    "DiscordSettings",
    "Secret",
    "load_settings",
    "webhook_variable",
]
redis_url_problem = checks.redis_url_problem
_HIDDEN: Final = "**********"


class Secret:
    """A secret text (a webhook URL, a Redis URL): shown as ``**********``."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def get_secret_value(self) -> str:
        """The secret itself. Never log or display it."""
        return self._value

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __repr__(self) -> str:
        return f"Secret('{_HIDDEN}')"

    def __str__(self) -> str:
        return _HIDDEN


@dataclass(frozen=True)
class DiscordSettings:
    """Every setting, with its default. See docs/configuration.md for the full table."""

    allowed_hosts: tuple[str, ...] = ()
    webhooks: dict[str, Secret] = field(default_factory=dict)
    rate_limit: int = 30
    retry_attempts: int = 3
    timeout_seconds: float = 10.0
    queue_size: int = 100
    store_path: Path | None = None
    routes: dict[str, str] = field(default_factory=dict)
    username: str | None = None
    avatar_url: str | None = None
    app_name: str = "discord-logging"
    aggregate_window: float = 60.0
    mentions: dict[str, tuple[str, ...]] = field(default_factory=dict)
    history_retention_days: float = 30.0
    history_max_bytes: int = 256 * 1024 * 1024
    history_export_dir: Path | None = None
    dead_letter_retention_days: float = 30.0
    dead_letter_max_bytes: int = 256 * 1024 * 1024
    close_timeout: float = 5.0
    handle_sigterm: bool = True
    journal: bool = True
    journal_max_bytes: int = 64 * 1024 * 1024
    memory_max_records: int = 10_000
    global_rate_limit: int = 50
    templates_dir: Path | None = None
    attach_full_text: bool = True
    redis_url: Secret | None = None
    fleet_size: int = 4
    trace_url_template: str | None = None
    incident_updates: str = alert_settings.EDIT
    incident_edit_interval: float = 10.0
    silent: dict[str, bool] = field(default_factory=lambda: alert_settings.parse_silent(None))
    buttons: dict[str, tuple[LinkButton, ...]] = field(default_factory=dict)
    forum: tuple[str, ...] = ()
    forum_tags: dict[str, tuple[str, ...]] = field(default_factory=dict)
    quiet_hours: tuple[QuietHours, ...] = ()

    @property
    def webhook_urls(self) -> dict[str, WebhookURL]:
        """Alert type name -> parsed webhook URL (validated when the settings were built)."""
        return {
            name: parse_webhook_url(secret.get_secret_value(), self.allowed_hosts)
            for name, secret in self.webhooks.items()
        }

    def replace(self, **changes: Any) -> DiscordSettings:
        """A copy with ``changes`` (not validated again: for values taken from settings)."""
        return dataclasses.replace(self, **changes)

    def as_dict(self, *, exclude: frozenset[str] = frozenset()) -> dict[str, Any]:
        """Plain JSON-ready values (paths as text, secrets hidden), for ``check --json``."""
        return {
            f.name: _plain(getattr(self, f.name))
            for f in dataclasses.fields(self)
            if f.name not in exclude
        }


FIELD_NAMES: Final = tuple(f.name for f in dataclasses.fields(DiscordSettings))


def _plain(value: Any) -> Any:
    if isinstance(value, Secret):
        return str(value)
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, LinkButton):
        return {"label": value.label, "url": value.url}
    if isinstance(value, QuietHours):
        return value.text
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _optional(read: Callable[[Any], Any]) -> Callable[[Any], Any]:
    return lambda value: None if value is None else read(value)


def _hosts(value: Any) -> tuple[str, ...]:
    return () if value is None else tuple(sorted(normalize_hosts(value)))


def _redis_url(value: Any) -> Secret | None:
    if value is None or value == "":
        return None
    label = ""
    if isinstance(value, SecretFile):  # DISCORD_REDIS_URL_FILE
        label = f"{value.variable} ({value.path}): "
        value = value.read()
    text = value.get_secret_value() if isinstance(value, Secret) else str(value)
    problem = checks.redis_url_problem(text)
    if problem:
        raise ValueError(label + problem)
    return Secret(text)


def _trace_url_template(value: Any) -> str | None:
    text = read_text(value) if value is not None else ""
    return check_trace_url_template(text) if text.strip() else None


# How each setting is read (webhooks aside: config.sources). Numbers carry their range.
READERS: Final[dict[str, Callable[[Any], Any]]] = {
    "allowed_hosts": _hosts,
    "rate_limit": Number(whole=True, low=0, low_open=True, high=10_000).read,
    "retry_attempts": Number(whole=True, low=1, high=20).read,
    "timeout_seconds": Number(whole=False, low=0, low_open=True, high=300).read,
    "queue_size": Number(whole=True, low=1, high=100_000).read,
    "store_path": read_path,
    "routes": checks.parse_routes,
    "username": _optional(lambda v: checks.check_username(read_text(v))),
    "avatar_url": _optional(lambda v: checks.check_avatar_url(read_text(v))),
    "app_name": lambda v: checks.check_app_name(read_text(v)),
    "aggregate_window": Number(whole=False, low=0, high=86_400).read,
    "mentions": checks.parse_mentions,
    "history_retention_days": Number(whole=False, low=0, low_open=True).read,
    "history_max_bytes": Number(whole=True, low=1024 * 1024).read,
    "history_export_dir": read_path,
    "dead_letter_retention_days": Number(whole=False, low=0, low_open=True).read,
    "dead_letter_max_bytes": Number(whole=True, low=1024 * 1024).read,
    "close_timeout": Number(whole=False, low=0, high=300).read,
    "handle_sigterm": read_flag,
    "journal": read_flag,
    "journal_max_bytes": Number(whole=True, low=1024 * 1024).read,
    "memory_max_records": Number(whole=True, low=100, high=1_000_000).read,
    "global_rate_limit": Number(whole=True, low=1, high=50).read,
    "templates_dir": read_path,
    "attach_full_text": read_flag,
    "redis_url": _redis_url,
    "fleet_size": Number(whole=True, low=1, high=10_000).read,
    "trace_url_template": _trace_url_template,
    "incident_edit_interval": Number(whole=False, low=0, low_open=True, high=3600).read,
    "quiet_hours": parse_quiet_hours,
    **alert_settings.PARSERS,
}
# Keyword arguments named apart from their setting.
_KEYWORD_ALIASES: Final = {"timeout": "timeout_seconds"}


def env_name(field_name: str) -> str:
    """The environment variable behind a setting."""
    if field_name == "webhooks":
        return "DISCORD_WEBHOOK_*"
    return ENV_PREFIX + field_name.upper()


def load_settings(*, _places: list[Place] | None = None, **overrides: Any) -> DiscordSettings:
    """Build settings from keywords (``None`` ones ignored), the environment and ``.env``;
    raise one ConfigurationError listing every problem, each named as the user gave it.

    ``timeout`` is accepted as the keyword for ``timeout_seconds``."""
    keywords = {_KEYWORD_ALIASES.get(k, k): v for k, v in overrides.items() if v is not None}
    unknown = set(keywords) - set(FIELD_NAMES)
    if unknown:
        hints = [f"{name!r}{did_you_mean(name, FIELD_NAMES)}" for name in unknown]
        raise ConfigurationError(
            f"unknown {plural(len(hints), 'setting')} {', '.join(sorted(hints))}; the settings are "
            f"{sorted(FIELD_NAMES)} (see docs/configuration.md)"
        )
    places = [environment(), dotenv()] if _places is None else _places
    labels = {k: _keyword_label(k, overrides) for k in keywords}
    given = gather(READERS, keywords, places)
    given = {k: Given(g.value, labels.get(k, g.label)) for k, g in given.items()}
    values: dict[str, Any] = {}
    problems: list[str] = []
    for name, reader in READERS.items():
        item = given.get(name)
        if item is None:
            continue
        try:
            values[name] = reader(item.value)
        except ValueError as exc:
            problems.append(_problem(name, item.label, str(exc)))
    try:
        webhooks = gather_webhooks(keywords.get("webhooks"), places)
    except ValueError as exc:
        problems.append(f"webhooks: {exc}. Fix: pass webhooks={{'general': url}}")
        webhooks = {}
    urls, webhook_problems = resolve_webhooks(webhooks, values.get("allowed_hosts", ()))
    problems[:0] = webhook_problems
    if problems:
        raise ConfigurationError("invalid configuration:\n  " + ".\n  ".join(problems) + ".")
    if not urls:
        raise ConfigurationError(
            "no Discord webhook is configured: set DISCORD_WEBHOOK_GENERAL (and optionally "
            "DISCORD_WEBHOOK_ERRORS, _CRITICAL, _TRACKLIST, _MONITORING, _SECURITY) to a webhook "
            "URL, or pass webhooks={'general': url}"
        )
    values["webhooks"] = {name: Secret(url) for name, url in urls.items()}
    settings = DiscordSettings(**values)
    _check_routes(settings, given.get("routes"))
    _check_quiet_hours(settings, given.get("quiet_hours"))
    return settings


def _keyword_label(name: str, overrides: Mapping[str, Any]) -> str:
    """A keyword as the user wrote it (``timeout`` for ``timeout_seconds``)."""
    alias = next((k for k, v in _KEYWORD_ALIASES.items() if v == name and k in overrides), None)
    return alias or name


def _problem(name: str, label: str, text: str) -> str:
    """One problem: how the user named the setting, what is wrong, and its fix, once."""
    text = redact(text)
    if text.startswith(label) or text.startswith(env_name(name) + "_FILE"):
        shown = text  # a secret file's problem names its own variable and file
    else:
        shown = f"{label}: {text}"
    if "Fix: " in shown:
        return shown
    return f"{shown}. Fix: {checks.FIXES.get(name, checks.DOCS)}"


def _check_routes(settings: DiscordSettings, given: Given | None) -> None:
    """A route to an alert type that no webhook can carry (a custom type with no webhook
    while ``general`` has none either) would drop every record it routes: refused here."""
    from .capture.routing import Router

    router = Router(settings.routes, settings.webhooks)
    stranded = sorted({kind for kind in settings.routes.values() if router.carrier(kind) is None})
    if stranded:
        label = given.label if given is not None else "DISCORD_ROUTES"
        names = ", ".join(repr(kind) for kind in stranded)
        raise ConfigurationError(
            f"invalid configuration:\n  {label}: routes records to {names}, which no webhook "
            f"carries (no webhook of that type, and none it falls back to). Fix: set "
            f"{webhook_variable(stranded[0])} or DISCORD_WEBHOOK_GENERAL (or the webhooks= "
            "keyword), or route to a configured type."
        )


def _check_quiet_hours(settings: DiscordSettings, given: Given | None) -> None:
    """A quiet-hours rule naming a near miss of a configured alert type (``genral``) would
    mute nothing every night: refused here, like any other bad setting."""
    if not settings.quiet_hours:
        return
    from .muting.control import configured_types
    from .muting.rules import misspelt

    known = configured_types(settings)
    for rule in settings.quiet_hours:
        if typo := misspelt(rule.scope, known):
            label = given.label if given is not None else "DISCORD_QUIET_HOURS"
            raise ConfigurationError(
                f"invalid configuration:\n  {label}: {rule.text or rule.scope!r}: {typo}. Fix: "
                f"{checks.FIXES['quiet_hours']}"
            )


def did_you_mean(name: str, candidates: Any) -> str:
    """`` (did you mean X?)`` for the closest of ``candidates`` to ``name``, or nothing."""
    close = closest(name, candidates)
    return f" (did you mean {close}?)" if close else ""
