"""Configuration from ``DISCORD_*`` environment variables, a ``.env`` file, or keyword arguments.

Every invalid value fails at start-up with one message naming the variable, the problem and the
fix. Webhook URLs are kept as secrets: they never appear in a repr, a message or an exception.
"""

from __future__ import annotations

import difflib
import os
from pathlib import Path
from typing import Annotated, Any, Final
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, ValidationInfo, field_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from .alerts import normalize_alert_type
from .capture.tracing import check_trace_url_template
from .config import alert_options as alert_settings
from .config.alert_options import LinkButton, split_pairs
from .config.sources import (
    ENV_PREFIX,
    WEBHOOK_PREFIX,
    EnvironmentSecrets,
    SecretFile,
    WithoutWebhooks,
    resolve_webhooks,
    webhook_variable,
)
from .errors import ConfigurationError
from .redaction import redact
from .transport.webhook_url import WebhookURL, normalize_hosts, parse_webhook_url
from .wording import plural

__all__ = ["ENV_PREFIX", "WEBHOOK_PREFIX", "DiscordSettings", "load_settings", "webhook_variable"]
MENTION_KINDS: Final = ("role", "user")
MENTION_WORDS: Final = ("everyone", "here")

_DOCS: Final = "see docs/configuration.md"
# The fix we suggest for each setting, shown after the problem (webhooks: config.sources).
_FIXES: Final = {
    "rate_limit": "use a whole number of messages per minute per webhook, e.g. 30",
    "retry_attempts": "use a whole number from 1 to 20, e.g. 3",
    "timeout_seconds": "use seconds greater than 0, e.g. 10",
    "queue_size": "use a whole number of notifications from 1 to 100000, e.g. 100",
    "routes": "use logger=type pairs separated by commas, e.g. myapp.security=security",
    "allowed_hosts": "use host or host:port names separated by commas",
    "username": "use 1 to 80 characters without the words 'discord' or 'clyde', not "
    "'everyone' or 'here'",
    "avatar_url": "use an https:// image URL of at most 2048 characters",
    "aggregate_window": "use seconds, 0 to turn aggregation off, e.g. 60",
    "mentions": "use type=role:<id>;user:<id>;here pairs separated by commas",
    "history_retention_days": "use a number of days greater than 0, e.g. 30",
    "history_max_bytes": "use a size in bytes of at least 1 MB",
    "dead_letter_retention_days": "use a number of days greater than 0, e.g. 30",
    "dead_letter_max_bytes": "use a size in bytes of at least 1 MB",
    "close_timeout": "use seconds from 0 to 300, e.g. 5",
    "journal": "use true or false",
    "journal_max_bytes": "use a size in bytes of at least 1 MB",
    "global_rate_limit": "use a whole number of requests per second from 1 to 50, e.g. 50",
    "attach_full_text": "use true or false",
    "redis_url": "use a redis:// or rediss:// URL, e.g. redis://redis.internal:6379/0",
    "fleet_size": "use the number of processes sharing the limits, from 1 to 10000, e.g. 4",
    "trace_url_template": "use an https:// URL with {trace_id} (and optionally {span_id}), "
    "e.g. https://tracing.example/trace/{trace_id}",
    **alert_settings.FIXES,
}
# Discord's limits for the author overrides (discord-openapi.json,
# IncomingWebhookRequestPartial: username 1-80, avatar_url a URI of at most 2048 characters;
# observed: names containing "discord"/"clyde", and "everyone"/"here", are refused with a 400).
USERNAME_MAX: Final = 80
AVATAR_URL_MAX: Final = 2048
_FORBIDDEN_IN_USERNAME: Final = ("discord", "clyde")
_FORBIDDEN_USERNAMES: Final = ("everyone", "here")
# pydantic error types that mean "not the right kind of value" or "out of range": answered with
# the allowed form or range in our words instead of the framework's.
_KIND_ERRORS: Final = frozenset(
    {
        "int_parsing",
        "int_type",
        "int_from_float",
        "float_parsing",
        "float_type",
        "finite_number",
        "greater_than",
        "greater_than_equal",
        "less_than",
        "less_than_equal",
        "bool_parsing",
        "bool_type",
        "path_type",
        "string_type",
    }
)


def env_name(field_name: str) -> str:
    """The environment variable behind a setting."""
    if field_name == "webhooks":
        return "DISCORD_WEBHOOK_*"
    return ENV_PREFIX + field_name.upper()


class DiscordSettings(BaseSettings):
    """Every setting, with its default. See docs/configuration.md for the full table."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_file=".env",
        extra="ignore",
        validate_default=True,
        hide_input_in_errors=True,
    )

    # allowed_hosts comes first: the webhook check below reads it.
    allowed_hosts: Annotated[tuple[str, ...], NoDecode] = ()
    webhooks: dict[str, SecretStr] = Field(default_factory=dict)
    rate_limit: int = Field(30, gt=0, le=10_000)
    retry_attempts: int = Field(3, ge=1, le=20)
    timeout_seconds: float = Field(10.0, gt=0, le=300)
    queue_size: int = Field(100, ge=1, le=100_000)
    store_path: Path | None = None
    routes: Annotated[dict[str, str], NoDecode] = Field(default_factory=dict)
    username: str | None = None
    avatar_url: str | None = None
    app_name: str = "discord-logging"
    aggregate_window: float = Field(60.0, ge=0, le=86_400)
    mentions: Annotated[dict[str, tuple[str, ...]], NoDecode] = Field(default_factory=dict)
    history_retention_days: float = Field(30.0, gt=0)
    history_max_bytes: int = Field(256 * 1024 * 1024, ge=1024 * 1024)
    history_export_dir: Path | None = None
    dead_letter_retention_days: float = Field(30.0, gt=0)
    dead_letter_max_bytes: int = Field(256 * 1024 * 1024, ge=1024 * 1024)
    close_timeout: float = Field(5.0, ge=0, le=300)
    handle_sigterm: bool = True
    journal: bool = True
    journal_max_bytes: int = Field(64 * 1024 * 1024, ge=1024 * 1024)
    global_rate_limit: int = Field(50, ge=1, le=50)
    templates_dir: Path | None = None
    attach_full_text: bool = True
    redis_url: SecretStr | None = None
    fleet_size: int = Field(4, ge=1, le=10_000)
    trace_url_template: str | None = None
    incident_updates: str = alert_settings.EDIT
    incident_edit_interval: float = Field(10.0, gt=0, le=3600)
    silent: Annotated[dict[str, bool], NoDecode] = Field(default_factory=dict)
    buttons: Annotated[dict[str, tuple[LinkButton, ...]], NoDecode] = Field(default_factory=dict)
    forum: Annotated[tuple[str, ...], NoDecode] = ()
    forum_tags: Annotated[dict[str, tuple[str, ...]], NoDecode] = Field(default_factory=dict)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        env_file = settings_cls.model_config.get("env_file")
        path = Path(str(env_file)) if isinstance(env_file, str | os.PathLike) else None
        init_kwargs = getattr(init_settings, "init_kwargs", {})
        sources: list[PydanticBaseSettingsSource] = [
            init_settings,
            EnvironmentSecrets(settings_cls, path, webhooks="webhooks" not in init_kwargs),
            WithoutWebhooks(settings_cls, env_settings),
            WithoutWebhooks(settings_cls, dotenv_settings),
        ]
        return tuple(sources)

    @field_validator("webhooks", mode="before")
    @classmethod
    def _webhooks(cls, value: Any, info: ValidationInfo) -> dict[str, str]:
        # Files are read here, so that every problem is reported with the others.
        return resolve_webhooks(value, info.data.get("allowed_hosts", ()))

    @field_validator("allowed_hosts", mode="before")
    @classmethod
    def _hosts(cls, value: Any) -> tuple[str, ...]:
        if value is None:
            return ()
        return tuple(sorted(normalize_hosts(value)))

    @field_validator("routes", mode="before")
    @classmethod
    def _routes(cls, value: Any) -> dict[str, str]:
        if value is None or value == "":
            return {}
        pairs = split_pairs(value, "DISCORD_ROUTES") if isinstance(value, str) else dict(value)
        return {str(k).strip(): normalize_alert_type(str(v)) for k, v in pairs.items()}

    @field_validator("mentions", mode="before")
    @classmethod
    def _mentions(cls, value: Any) -> dict[str, tuple[str, ...]]:
        if value is None or value == "":
            return {}
        return {
            kind: tuple(_mention_target(str(t)) for t in items if str(t).strip())
            for kind, items in alert_settings.type_lists(value, "DISCORD_MENTIONS").items()
        }

    @field_validator(*alert_settings.PARSERS, mode="before")
    @classmethod
    def _per_alert_type(cls, value: Any, info: ValidationInfo) -> Any:
        return alert_settings.PARSERS[str(info.field_name)](value)

    @field_validator("redis_url", mode="before")
    @classmethod
    def _redis_url(cls, value: Any) -> Any:
        if value is None or value == "":
            return None
        label = ""
        if isinstance(value, SecretFile):  # DISCORD_REDIS_URL_FILE
            label = f"{value.variable} ({value.path}): "
            value = value.read()
        text = value.get_secret_value() if isinstance(value, SecretStr) else str(value)
        problem = redis_url_problem(text)
        if problem:
            raise ValueError(label + problem)
        return text

    @field_validator("username")
    @classmethod
    def _username(cls, value: str | None) -> str | None:
        if value is None:
            return None
        # Discord trims the name before checking it: blank is empty.
        if not 1 <= len(value.strip()) <= USERNAME_MAX or len(value) > USERNAME_MAX:
            raise ValueError(f"must be 1 to {USERNAME_MAX} characters, not blank")
        lowered = value.strip().lower()
        if any(word in lowered for word in _FORBIDDEN_IN_USERNAME):
            raise ValueError("Discord rejects user names containing 'discord' or 'clyde'")
        if lowered in _FORBIDDEN_USERNAMES:
            raise ValueError(f"Discord rejects the user name {lowered!r}")
        return value

    @field_validator("avatar_url")
    @classmethod
    def _avatar(cls, value: str | None) -> str | None:
        if value is None:
            return None
        scheme, sep, rest = value.partition("://")
        host = rest.split("/", 1)[0]
        if not sep or scheme.lower() not in ("http", "https") or not host or " " in value:
            raise ValueError("must be an http:// or https:// URL")
        if len(value) > AVATAR_URL_MAX:
            raise ValueError(f"must be at most {AVATAR_URL_MAX} characters")
        return value

    @field_validator("trace_url_template")
    @classmethod
    def _trace_url_template(cls, value: str | None) -> str | None:
        return check_trace_url_template(value) if value else None

    @field_validator("app_name")
    @classmethod
    def _app_name(cls, value: str) -> str:
        value = value.strip()
        if not value or len(value) > 100:
            raise ValueError("must be 1 to 100 characters")
        return value

    @property
    def webhook_urls(self) -> dict[str, WebhookURL]:
        """Alert type name -> parsed webhook URL (validated when the settings were built)."""
        return {
            name: parse_webhook_url(secret.get_secret_value(), self.allowed_hosts)
            for name, secret in self.webhooks.items()
        }


def redis_url_problem(url: str) -> str | None:
    """Why ``url`` cannot reach Redis, in words that never show its password; None if usable.

    Checked here, not left to redis-py: its parser raises deep in the worker for a bad port,
    and silently connects to database 0 for a path it cannot read."""
    if not url.startswith(("redis://", "rediss://", "unix://")):
        return "must start with redis://, rediss:// or unix://"
    parts = urlsplit(url)
    if parts.scheme == "unix":
        if parts.path.strip("/"):
            return None
        return "names no socket path. Fix: e.g. unix:///run/redis/redis.sock"
    # A '/', '?' or '#' in the password ends the address early: the rest of it reads as the
    # path, with the '@' before the host still in it.
    if "@" in parts.path or "@" in parts.query or "@" in parts.fragment:
        return (
            "the password (or user name) holds a '/', '?' or '#', which ends the address early. "
            "Fix: write them percent-encoded (%2F, %3F, %23)"
        )
    try:
        parts.port  # noqa: B018 - parsing the port is the check
    except ValueError:
        return "the port is not a number from 1 to 65535. Fix: write host:port, e.g. cache:6379"
    database = parts.path.strip("/")
    if database and not database.isdigit() and "db=" not in parts.query:
        return "the database (the path after the host) is not a number. Fix: end with it, e.g. /0"
    return None


def _mention_target(text: str) -> str:
    target = text.strip().lower()
    if target in MENTION_WORDS:
        return target
    kind, sep, ident = target.partition(":")
    if sep and kind in MENTION_KINDS and ident.isdigit():
        return f"{kind}:{ident}"
    raise ValueError(f"mention {text.strip()!r} must be role:<id>, user:<id>, here or everyone")


def load_settings(**overrides: Any) -> DiscordSettings:
    """Build settings from the environment and ``overrides``; raise one clear ConfigurationError.

    ``timeout`` is accepted as the keyword for ``timeout_seconds``. ``None`` values are ignored,
    so callers can pass their optional keywords straight through.
    """
    kwargs = {k: v for k, v in overrides.items() if v is not None}
    if "timeout" in kwargs:
        kwargs["timeout_seconds"] = kwargs.pop("timeout")
    unknown = set(kwargs) - set(DiscordSettings.model_fields)
    if unknown:
        hints = [f"{name!r}{did_you_mean(name, DiscordSettings.model_fields)}" for name in unknown]
        raise ConfigurationError(
            f"unknown {plural(len(hints), 'setting')} {', '.join(sorted(hints))}; the settings are "
            f"{sorted(DiscordSettings.model_fields)} (see docs/configuration.md)"
        )
    try:
        settings = DiscordSettings(**kwargs)
    except ValidationError as exc:
        raise ConfigurationError(_describe(exc)) from None
    if not settings.webhooks:
        raise ConfigurationError(
            "no Discord webhook is configured: set DISCORD_WEBHOOK_GENERAL (and optionally "
            "DISCORD_WEBHOOK_ERRORS, _CRITICAL, _TRACKLIST, _MONITORING, _SECURITY) to a webhook "
            "URL, or pass webhooks={'general': url}"
        )
    return settings


def did_you_mean(name: str, candidates: Any) -> str:
    """`` (did you mean X?)`` for the closest of ``candidates`` to ``name``, or nothing."""
    close = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.75)
    return f" (did you mean {close[0]}?)" if close else ""


def allowed_values(field_name: str) -> str:
    """What a setting accepts, in words: ``a whole number from 1 to 20``."""
    info = DiscordSettings.model_fields[field_name]
    if info.annotation is bool:
        return "true or false"
    if info.annotation not in (int, float):
        return "a valid value (see docs/configuration.md)"
    kind = "a whole number" if info.annotation is int else "a number"
    low: tuple[str, Any] | None = None
    high: tuple[str, Any] | None = None
    for rule in info.metadata:
        for attr, words in (("gt", "greater than"), ("ge", "at least")):
            if getattr(rule, attr, None) is not None:
                low = (words, getattr(rule, attr))
        for attr, words in (("lt", "less than"), ("le", "at most")):
            if getattr(rule, attr, None) is not None:
                high = (words, getattr(rule, attr))
    if low and low[0] == "greater than" and info.annotation is int:
        low = ("at least", low[1] + 1)  # "greater than 0" of a whole number is "at least 1"
    if low and high and low[0] == "at least" and high[0] == "at most":
        return f"{kind} from {_number(low[1])} to {_number(high[1])}"
    bounds = [f"{bound[0]} {_number(bound[1])}" for bound in (low, high) if bound is not None]
    joined = " and ".join(bounds)
    return f"{kind} of {joined}" if joined.startswith("at least") else f"{kind} {joined}".strip()


def _fraction(value: Any, field_name: str) -> bool:
    """Whether ``value`` is a number with a fractional part given to a whole-number setting."""
    if DiscordSettings.model_fields[field_name].annotation is not int:
        return False
    try:
        return not float(value).is_integer()
    except (TypeError, ValueError, OverflowError):
        return False


def _number(value: float) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _problem(error: Any, field_name: str) -> str:
    """One validation error in the library's words: the value (never a webhook's) and what is
    allowed, not pydantic's phrasing."""
    if error["type"] not in _KIND_ERRORS or field_name not in DiscordSettings.model_fields:
        return redact(str(error["msg"]).removeprefix("Value error, "))
    shown = error.get("input")
    value = repr(shown if len(str(shown)) <= 40 else str(shown)[:39] + "…")
    suffix = " (fractions are refused)" if _fraction(shown, field_name) else ""
    return redact(f"{value} is not {allowed_values(field_name)}{suffix}")


def _describe(exc: ValidationError) -> str:
    lines = []
    for error in exc.errors(include_url=False):
        loc = error["loc"]
        if not loc:  # model-level checks already name their variable
            lines.append(redact(str(error["msg"]).removeprefix("Value error, ")))
            continue
        field_name = str(loc[0])
        problem = _problem(error, field_name)
        if field_name == "webhooks":  # each problem names its variable and fix; never a URL
            lines.append(f"{problem}.")
            continue
        # A problem with a secret file names its own variable (DISCORD_REDIS_URL_FILE) and fix.
        name = "" if problem.startswith(env_name(field_name)) else f"{env_name(field_name)}: "
        fix = "" if "Fix: " in problem else f". Fix: {_FIXES.get(field_name, _DOCS)}"
        lines.append(f"{name}{problem}{fix}.")
    return "invalid configuration:\n  " + "\n  ".join(lines)
