"""Where settings come from: keyword arguments, ``DISCORD_*`` variables in the environment and
in the ``.env`` file, and secrets read from files; each value carries how the user gave it, so
that an error names it that way (``webhooks['error']``, ``DISCORD_WEBHOOK_ERRORS``,
``DISCORD_WEBHOOK_ERRORS (.env line 3)``).

Keywords win over the environment, the environment over ``.env``, one setting at a time; a
``webhooks=`` keyword replaces every webhook variable. Secrets from files follow the Docker and
Kubernetes convention: ``DISCORD_WEBHOOK_<TYPE>_FILE`` and ``DISCORD_REDIS_URL_FILE`` name a
file whose contents (trimmed) are the value. An error names the variable and the file, never
what the file holds. Within one place, a setting given twice (``DISCORD_WEBHOOK_ERRORS`` and
``DISCORD_WEBHOOK_ERRORS_FILE``, or ``DISCORD_WEBHOOK_ERROR`` beside ``..._ERRORS``) is an
error rather than a silent choice.

Light on purpose (python-dotenv's parser and the standard library): read on the caller's
thread when a handler is created (docs/architecture.md, "Start-up").
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from ..alerts import ALIASES, normalize_alert_type
from ..transport.webhook_url import parse_webhook_url

ENV_PREFIX: Final = "DISCORD_"
WEBHOOK_PREFIX: Final = "DISCORD_WEBHOOK_"
FILE_SUFFIX: Final = "_FILE"
DOTENV: Final = Path(".env")
# Settings that are secrets and may be read from a file named by DISCORD_<NAME>_FILE.
SECRET_FILE_SETTINGS: Final = ("redis_url",)
URL_FIX: Final = "copy the whole webhook URL from Discord (Channel settings > Integrations)"
_FILE_FIX: Final = "write the value alone into the file, as text"


def webhook_variable(alert_type: str) -> str:
    """The documented variable for an alert type's webhook (DISCORD_WEBHOOK_ERRORS for 'error')."""
    suffix = next((alias for alias, name in ALIASES.items() if name == alert_type), alert_type)
    return WEBHOOK_PREFIX + suffix.upper()


@dataclass(frozen=True, slots=True)
class Given:
    """A setting's value as the user gave it, and how errors name it."""

    value: Any
    label: str


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
    """A webhook URL as configured: how the user named it, and its text or its file."""

    variable: str
    value: str | SecretFile

    @property
    def label(self) -> str:
        """How errors name it: the variable (or keyword), with the file it points at."""
        if isinstance(self.value, SecretFile):
            return f"{self.variable} ({self.value.path})"
        return self.variable

    def text(self) -> str:
        """The URL text (read from the file when it is one)."""
        return self.value.read() if isinstance(self.value, SecretFile) else self.value


@dataclass(frozen=True, slots=True)
class Place:
    """One place variables are set: the environment, or the ``.env`` file with each line."""

    values: dict[str, str]
    lines: dict[str, int]  # variable -> line, for a file
    file: str | None = None

    def label(self, variable: str) -> str:
        """How errors name ``variable`` set here."""
        if self.file is None:
            return variable
        return f"{variable} ({self.file} line {self.lines.get(variable, 0)})"


def environment(environ: Mapping[str, str] | None = None) -> Place:
    """``DISCORD_*`` names (upper case) -> values set in the environment."""
    source = os.environ if environ is None else environ
    return Place({k.upper(): v for k, v in source.items() if k.upper().startswith(ENV_PREFIX)}, {})


def dotenv(path: Path = DOTENV) -> Place:
    """``DISCORD_*`` names (upper case) -> values set in the ``.env`` file, with their lines.
    Lines python-dotenv cannot parse are skipped, as it does."""
    try:
        if not path.is_file():
            return Place({}, {}, str(path))
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError):
        return Place({}, {}, str(path))
    import io

    from dotenv.parser import parse_stream

    values: dict[str, str] = {}
    lines: dict[str, int] = {}
    for binding in parse_stream(io.StringIO(text)):
        if binding.key is None or binding.value is None or binding.error:
            continue
        key = binding.key.upper()
        if not key.startswith(ENV_PREFIX):
            continue
        original = binding.original
        # The parser folds the blank lines before a binding into it.
        leading = original.string[: original.string.find(binding.key)].count("\n")
        values[key] = binding.value
        lines[key] = original.line + leading
    return Place(values, lines, str(path))


def gather(
    names: Iterable[str], keywords: Mapping[str, Any], places: list[Place]
) -> dict[str, Given]:
    """Setting name -> what the user gave for it: the keyword, else the first place (the
    environment before ``.env``) that sets ``DISCORD_<NAME>`` (or its ``_FILE``, for secrets).
    Webhooks are gathered by :func:`gather_webhooks`."""
    found: dict[str, Given] = {}
    for name in names:
        if name in keywords:
            found[name] = Given(keywords[name], name)
            continue
        variable = ENV_PREFIX + name.upper()
        for place in places:
            if name in SECRET_FILE_SETTINGS:
                secret = _secret_file(variable, place)
                if secret is not None:
                    found[name] = Given(secret, place.label(secret.variable))
                    break
            value = place.values.get(variable)
            if value is not None:
                found[name] = Given(value, place.label(variable))
                break
    return found


def _secret_file(variable: str, place: Place) -> SecretFile | None:
    path = (place.values.get(variable + FILE_SUFFIX) or "").strip()
    if not path:
        return None
    plain = (place.values.get(variable) or "").strip()
    return SecretFile(variable + FILE_SUFFIX, path, also_set=variable if plain else None)


def gather_webhooks(
    keyword: Mapping[str, Any] | None, places: list[Place]
) -> dict[str, list[ConfiguredWebhook]]:
    """Alert type -> every way its webhook was given. The ``webhooks=`` keyword replaces the
    variables entirely; otherwise the environment wins over ``.env``, one type at a time."""
    if keyword is not None:
        if not isinstance(keyword, Mapping):
            raise ValueError("webhooks must map alert type names to webhook URLs")
        return {
            _alert_type_key(str(name)): [ConfiguredWebhook(f"webhooks[{str(name)!r}]", url)]
            for name, url in keyword.items()
        }
    webhooks: dict[str, list[ConfiguredWebhook]] = {}
    for place in reversed(places):  # the environment last: it wins
        webhooks.update(_webhooks_in(place))
    return webhooks


def _alert_type_key(suffix: str) -> str:
    """The alert type a DISCORD_WEBHOOK_<SUFFIX> names; an invalid name is kept as it is, for
    :func:`resolve_webhooks` to refuse with its reason."""
    try:
        return normalize_alert_type(suffix)
    except ValueError:
        return suffix.lower()


def _webhooks_in(place: Place) -> dict[str, list[ConfiguredWebhook]]:
    """Alert type -> every DISCORD_WEBHOOK_<TYPE>[_FILE] of one place (empty ones ignored)."""
    found: dict[str, list[ConfiguredWebhook]] = {}
    for name, value in sorted(place.values.items()):
        if not name.startswith(WEBHOOK_PREFIX) or not value or not value.strip():
            continue
        suffix = name[len(WEBHOOK_PREFIX) :]
        source: str | SecretFile = value
        label = place.label(name)
        if suffix.endswith(FILE_SUFFIX) and len(suffix) > len(FILE_SUFFIX):
            suffix = suffix[: -len(FILE_SUFFIX)]
            source = SecretFile(label, value.strip())
        found.setdefault(_alert_type_key(suffix), []).append(ConfiguredWebhook(label, source))
    return found


def resolve_webhooks(
    given: Mapping[str, list[ConfiguredWebhook]], allowed_hosts: Iterable[str]
) -> tuple[dict[str, str], list[str]]:
    """Alert type -> webhook URL text, each read and checked against the host allow-list; and
    the problems, each naming its variable or keyword (and file), never a URL or a file's
    contents, and giving its fix once."""
    hosts = tuple(allowed_hosts)
    urls: dict[str, str] = {}
    problems: list[str] = []
    for name, sources in given.items():
        if len({source.value for source in sources}) > 1:  # the same URL twice is harmless
            named = " and ".join(source.variable for source in sources)
            problems.append(f"{named} set the webhook of alert type {name!r}. Fix: keep one")
            continue
        source = sources[0]
        try:
            kind = normalize_alert_type(str(name))
        except ValueError as exc:
            problems.append(f"{source.label}: {exc}. Fix: rename it")
            continue
        try:
            text = source.text()
        except ValueError as exc:  # names the variable, the file and the fix itself
            problems.append(str(exc))
            continue
        if not isinstance(text, str):
            problems.append(f"{source.label}: is not text. Fix: {URL_FIX}")
            continue
        try:
            parse_webhook_url(text, hosts)
        except ValueError as exc:  # InvalidWebhookURL: what is wrong and its fix, no URL
            fix = "" if "Fix: " in str(exc) else f". Fix: {URL_FIX}"
            problems.append(f"{source.label}: {exc}{fix}")
            continue
        urls[kind] = text
    return urls, problems
