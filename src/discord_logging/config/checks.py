"""The checks of single settings whose rules are Discord's or Redis's, not a number's range:
the author overrides, the app name, mentions, routes, the Redis URL; and the fix suggested for
each setting. Pure and light, like the rest of :mod:`discord_logging.config`."""

from __future__ import annotations

from typing import Any, Final
from urllib.parse import urlsplit

from ..alerts import normalize_alert_type
from . import alert_options as alert_settings
from .alert_options import split_pairs, type_lists

MENTION_KINDS: Final = ("role", "user")
MENTION_WORDS: Final = ("everyone", "here")

DOCS: Final = "see docs/configuration.md"
# The fix we suggest for each setting, shown after the problem (webhooks: config.sources).
FIXES: Final = {
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
    "memory_max_records": "use a whole number of records from 100 to 1000000, e.g. 10000",
    "global_rate_limit": "use a whole number of requests per second from 1 to 50, e.g. 50",
    "attach_full_text": "use true or false",
    "redis_url": "use a redis:// or rediss:// URL, e.g. redis://redis.internal:6379/0",
    "fleet_size": "use the number of processes sharing the limits, from 1 to 10000, e.g. 4",
    "trace_url_template": "use an https:// URL with {trace_id} (and optionally {span_id}), "
    "e.g. https://tracing.example/trace/{trace_id}",
    "quiet_hours": "use types=HH:MM-HH:MM zone rules separated by ;, e.g. "
    "general,monitoring=22:00-07:00 Europe/Berlin",
    **alert_settings.FIXES,
}
# Discord's limits for the author overrides (discord-openapi.json,
# IncomingWebhookRequestPartial: username 1-80, avatar_url a URI of at most 2048 characters;
# observed: names containing "discord"/"clyde", and "everyone"/"here", are refused with a 400).
USERNAME_MAX: Final = 80
AVATAR_URL_MAX: Final = 2048
_FORBIDDEN_IN_USERNAME: Final = ("discord", "clyde")
_FORBIDDEN_USERNAMES: Final = ("everyone", "here")


def check_username(value: str) -> str:
    """A name Discord shows as the author, or ValueError saying why it would refuse it."""
    # Discord trims the name before checking it: blank is empty.
    if not 1 <= len(value.strip()) <= USERNAME_MAX or len(value) > USERNAME_MAX:
        raise ValueError(f"must be 1 to {USERNAME_MAX} characters, not blank")
    lowered = value.strip().lower()
    if any(word in lowered for word in _FORBIDDEN_IN_USERNAME):
        raise ValueError("Discord rejects user names containing 'discord' or 'clyde'")
    if lowered in _FORBIDDEN_USERNAMES:
        raise ValueError(f"Discord rejects the user name {lowered!r}")
    return value


def check_avatar_url(value: str) -> str:
    """An avatar URL Discord can fetch, or ValueError."""
    scheme, sep, rest = value.partition("://")
    host = rest.split("/", 1)[0]
    if not sep or scheme.lower() not in ("http", "https") or not host or " " in value:
        raise ValueError("must be an http:// or https:// URL")
    if len(value) > AVATAR_URL_MAX:
        raise ValueError(f"must be at most {AVATAR_URL_MAX} characters")
    return value


def check_app_name(value: str) -> str:
    """The app name, trimmed; 1 to 100 characters."""
    value = value.strip()
    if not value or len(value) > 100:
        raise ValueError("must be 1 to 100 characters")
    return value


def parse_routes(value: Any) -> dict[str, str]:
    """DISCORD_ROUTES: ``logger=type`` pairs (or a dict)."""
    if value is None or value == "":
        return {}
    pairs = split_pairs(value, "DISCORD_ROUTES") if isinstance(value, str) else dict(value)
    return {str(k).strip(): normalize_alert_type(str(v)) for k, v in pairs.items()}


def parse_mentions(value: Any) -> dict[str, tuple[str, ...]]:
    """DISCORD_MENTIONS: ``type=role:<id>;user:<id>;here`` pairs (or a dict)."""
    if value is None or value == "":
        return {}
    return {
        kind: tuple(mention_target(str(t)) for t in items if str(t).strip())
        for kind, items in type_lists(value, "DISCORD_MENTIONS").items()
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


def mention_target(text: str) -> str:
    target = text.strip().lower()
    if target in MENTION_WORDS:
        return target
    kind, sep, ident = target.partition(":")
    if sep and kind in MENTION_KINDS and ident.isdigit():
        return f"{kind}:{ident}"
    raise ValueError(f"mention {text.strip()!r} must be role:<id>, user:<id>, here or everyone")
