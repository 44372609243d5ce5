"""Where settings come from besides keywords: ``DISCORD_*`` variables in the environment and in
the ``.env`` file, and secrets read from files.

Secrets from files follow the Docker and Kubernetes convention: ``DISCORD_WEBHOOK_<TYPE>_FILE``
and ``DISCORD_REDIS_URL_FILE`` name a file whose contents (trimmed) are the value. An error
names the variable and the file, never what the file holds. The environment wins over ``.env``;
within one of them, a setting given twice (``DISCORD_WEBHOOK_ERRORS`` and
``DISCORD_WEBHOOK_ERRORS_FILE``, or ``DISCORD_WEBHOOK_ERROR`` beside ``..._ERRORS``) is an
error rather than a silent choice.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from pydantic import SecretStr
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource

from ..alerts import ALIASES, normalize_alert_type
from ..transport.webhook_url import parse_webhook_url

ENV_PREFIX: Final = "DISCORD_"
WEBHOOK_PREFIX: Final = "DISCORD_WEBHOOK_"
FILE_SUFFIX: Final = "_FILE"
# Settings that are secrets and may be read from a file named by DISCORD_<NAME>_FILE.
SECRET_FILE_SETTINGS: Final = ("redis_url",)
URL_FIX: Final = "copy the whole webhook URL from Discord (Channel settings > Integrations)"
_FILE_FIX: Final = "write the value alone into the file, as text"


def webhook_variable(alert_type: str) -> str:
    """The documented variable for an alert type's webhook (DISCORD_WEBHOOK_ERRORS for 'error')."""
    suffix = next((alias for alias, name in ALIASES.items() if name == alert_type), alert_type)
    return WEBHOOK_PREFIX + suffix.upper()


@dataclass(frozen=True, slots=True)
class SecretFile:
    """A value kept in a file, as named by ``variable``; read when the settings are validated."""

    variable: str
    path: str
    also_set: str | None = None  # the plain variable, set beside this one in the same place

    def read(self) -> str:
        """The file's text, trimmed. ValueError naming the variable, the file (never its
        contents) and the fix, when it is missing, unreadable, not text, or empty."""
        if self.also_set:
            raise ValueError(f"{self.also_set} and {self.variable} are both set. Fix: keep one")
        try:
            text = Path(self.path).read_text(encoding="utf-8")
        except OSError as exc:
            raise ValueError(
                f"{self.variable} names {self.path}, which cannot be read "
                f"({exc.strerror or type(exc).__name__}). Fix: point {self.variable} at the "
                "secret file, mounted readable by this user"
            ) from None
        except UnicodeDecodeError:
            raise ValueError(
                f"{self.variable} names {self.path}, which is not UTF-8 text. Fix: {_FILE_FIX}"
            ) from None
        if not text.strip():
            raise ValueError(f"{self.variable} names {self.path}, which is empty. Fix: {_FILE_FIX}")
        return text.strip()


@dataclass(frozen=True, slots=True)
class ConfiguredWebhook:
    """A webhook URL as configured: the variable that set it, and its text or its file."""

    variable: str
    value: str | SecretFile

    @property
    def label(self) -> str:
        """How errors name it: the variable, with the file it points at."""
        if isinstance(self.value, SecretFile):
            return f"{self.variable} ({self.value.path})"
        return self.variable

    def text(self) -> str:
        """The URL text (read from the file when it is one)."""
        return self.value.read() if isinstance(self.value, SecretFile) else self.value


def _alert_type_key(suffix: str) -> str:
    """The alert type a DISCORD_WEBHOOK_<SUFFIX> names; an invalid name is kept as it is, for
    the settings' validator to refuse with its reason."""
    try:
        return normalize_alert_type(suffix)
    except ValueError:
        return suffix.lower()


def _webhooks_in(variables: Mapping[str, str]) -> dict[str, list[ConfiguredWebhook]]:
    """Alert type -> every DISCORD_WEBHOOK_<TYPE>[_FILE] of one place (empty ones ignored)."""
    found: dict[str, list[ConfiguredWebhook]] = {}
    for name, value in sorted(variables.items()):
        if not name.startswith(WEBHOOK_PREFIX) or not value or not value.strip():
            continue
        suffix = name[len(WEBHOOK_PREFIX) :]
        source: str | SecretFile = value
        if suffix.endswith(FILE_SUFFIX) and len(suffix) > len(FILE_SUFFIX):
            suffix = suffix[: -len(FILE_SUFFIX)]
            source = SecretFile(name, value.strip())
        found.setdefault(_alert_type_key(suffix), []).append(ConfiguredWebhook(name, source))
    return found


def resolve_webhooks(value: Any, allowed_hosts: Iterable[str]) -> dict[str, str]:
    """Alert type -> webhook URL text, each read and checked against the host allow-list.

    ``value`` maps names to URLs (the ``webhooks=`` keyword) or to what the environment set
    (lists of :class:`ConfiguredWebhook`). Every problem is collected into one ValueError,
    each naming its variable (and file), never a URL or a file's contents.
    """
    if not isinstance(value, Mapping):
        raise ValueError("must map alert type names to webhook URLs")
    hosts = tuple(allowed_hosts)
    urls: dict[str, str] = {}
    problems: list[str] = []
    for name, configured in value.items():
        if isinstance(configured, list) and all(
            isinstance(source, ConfiguredWebhook) for source in configured
        ):
            sources = configured  # from the environment (EnvironmentSecrets)
        else:
            text = (
                configured.get_secret_value() if isinstance(configured, SecretStr) else configured
            )
            sources = [ConfiguredWebhook(webhook_variable(_alert_type_key(str(name))), str(text))]
        if len({source.value for source in sources}) > 1:  # the same URL twice is harmless
            named = " and ".join(source.variable for source in sources)
            problems.append(f"{named} set the webhook of alert type {name!r}. Fix: keep one")
            continue
        source = sources[0]
        try:
            kind = normalize_alert_type(str(name))
        except ValueError as exc:
            problems.append(f"{source.label}: {exc}. Fix: rename the variable")
            continue
        try:
            text = source.text()
        except ValueError as exc:  # names the variable, the file and the fix itself
            problems.append(str(exc))
            continue
        try:
            parse_webhook_url(text, hosts)
        except ValueError as exc:  # InvalidWebhookURL: says what is wrong, never the URL
            problems.append(f"{source.label}: {exc}. Fix: {URL_FIX}")
            continue
        urls[kind] = text
    if problems:
        raise ValueError(".\n  ".join(problems))
    return urls


def _dotenv(env_file: Path | None) -> dict[str, str]:
    """``DISCORD_*`` names (upper case) -> values set in the ``.env`` file."""
    if env_file is None or not env_file.is_file():
        return {}
    from dotenv import dotenv_values

    return {
        key.upper(): value
        for key, value in dotenv_values(env_file).items()
        if value is not None and key.upper().startswith(ENV_PREFIX)
    }


def _environment() -> dict[str, str]:
    """``DISCORD_*`` names (upper case) -> values set in the environment."""
    return {key.upper(): v for key, v in os.environ.items() if key.upper().startswith(ENV_PREFIX)}


class EnvironmentSecrets(PydanticBaseSettingsSource):
    """``DISCORD_WEBHOOK_<TYPE>[_FILE]`` and ``DISCORD_<SECRET>_FILE`` from the environment
    and the ``.env`` file; the environment wins, one alert type (or setting) at a time.

    A ``webhooks=`` keyword replaces every webhook variable: explicit configuration is not
    mixed with whatever happens to be in the environment.
    """

    def __init__(
        self, settings_cls: type[BaseSettings], env_file: Path | None, *, webhooks: bool
    ) -> None:
        super().__init__(settings_cls)
        self._env_file = env_file
        self._webhooks = webhooks

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # pragma: no cover - __call__ does the work

    def __call__(self) -> dict[str, Any]:
        places = [_environment(), _dotenv(self._env_file)]  # the environment first: it wins
        data: dict[str, Any] = {}
        if self._webhooks:
            webhooks: dict[str, list[ConfiguredWebhook]] = {}
            for variables in reversed(places):
                webhooks.update(_webhooks_in(variables))
            if webhooks:
                data["webhooks"] = webhooks
        for field_name in SECRET_FILE_SETTINGS:
            found = _secret_file(ENV_PREFIX + field_name.upper(), places)
            if found is not None:
                data[field_name] = found
        return data


def _secret_file(variable: str, places: list[dict[str, str]]) -> SecretFile | None:
    """``<variable>_FILE`` from the first place that sets either form of the setting."""
    for variables in places:
        plain = (variables.get(variable) or "").strip()
        path = (variables.get(variable + FILE_SUFFIX) or "").strip()
        if path:
            return SecretFile(variable + FILE_SUFFIX, path, also_set=variable if plain else None)
        if plain:
            return None  # the plain variable of a place that wins
    return None


class WithoutWebhooks(PydanticBaseSettingsSource):
    """An env or .env source minus ``webhooks``: webhooks come only from DISCORD_WEBHOOK_<TYPE>
    (or the keyword), never from a stray DISCORD_WEBHOOKS variable."""

    def __init__(self, settings_cls: type[BaseSettings], inner: PydanticBaseSettingsSource):
        super().__init__(settings_cls)
        self._inner = inner

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # pragma: no cover - __call__ does the work

    def __call__(self) -> dict[str, Any]:
        data = dict(self._inner())
        data.pop("webhooks", None)
        return data
