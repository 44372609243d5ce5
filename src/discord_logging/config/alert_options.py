"""Settings given per alert type: which messages are silent, their link buttons, which webhooks
post into forum channels and with which tags, and how an incident's repeats are shown.

Parsed here from the environment's strings or the keywords' dicts and lists, and validated
once at start-up (the library's one-message-per-problem errors are built in ``settings.py``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from ..alerts import normalize_alert_type

# How an incident's repeats reach Discord: one message kept current by edits, or (the
# behaviour before edits existed) the first occurrence, then a second message with the count.
EDIT: Final = "edit"
SECOND_MESSAGE: Final = "message"
INCIDENT_UPDATES: Final = (EDIT, SECOND_MESSAGE)

# Keys of DISCORD_SILENT that are not alert types: backlog digests, and an incident's
# updates when they go out as messages of their own (an edit never notifies anyone).
DIGESTS: Final = "digests"
UPDATES: Final = "updates"
SILENT_DEFAULTS: Final = {
    "general": True,
    "monitoring": True,
    "tracklist": True,
    DIGESTS: True,
    UPDATES: True,
    "error": False,
    "critical": False,
    "security": False,
}
# Discord's limits for link buttons (discord-openapi.json, ButtonComponentForMessageRequest:
# label at most 80 characters, url at most 512; an action row holds at most 5 components).
BUTTON_LABEL_MAX: Final = 80
BUTTON_URL_MAX: Final = 512
BUTTONS_MAX: Final = 5
# IncomingWebhookRequestPartial.applied_tags: at most 5 tag ids.
TAGS_MAX: Final = 5

FIXES: Final = {
    "incident_updates": "use edit (one message per incident, kept current) or message (a "
    "second message with the count)",
    "incident_edit_interval": "use seconds greater than 0, e.g. 10",
    "silent": "use type=true or type=false pairs separated by commas, e.g. "
    "general=true,error=false (digests and updates name digests and incident updates)",
    "buttons": 'use JSON mapping alert types to buttons, e.g. {"error": [{"label": '
    '"Runbook", "url": "https://runbooks.example.com/{{ logger }}"}]}',
    "forum": "use alert type names separated by commas, e.g. error,critical",
    "forum_tags": "use type=tagid;tagid pairs separated by commas (at most 5 numeric tag "
    "ids each), e.g. error=1234567890;2345678901",
}
_TRUE: Final = frozenset({"true", "1", "yes", "on"})
_FALSE: Final = frozenset({"false", "0", "no", "off"})


def split_pairs(value: str, setting: str) -> dict[str, str]:
    """``key=value`` pairs separated by commas (blank items skipped)."""
    pairs: dict[str, str] = {}
    for item in value.split(","):
        if not item.strip():
            continue
        key, sep, target = item.partition("=")
        if not sep or not key.strip() or not target.strip():
            raise ValueError(f"{item.strip()!r} is not a key=value pair in {setting}")
        pairs[key.strip()] = target.strip()
    return pairs


def _silent_key(name: str) -> str:
    key = name.strip().lower()
    return key if key in (DIGESTS, UPDATES) else normalize_alert_type(key)


def _flag(value: Any, key: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE or text in _FALSE:
        return text in _TRUE
    raise ValueError(f"{key}={str(value)[:20]!r}: silent or not is true or false")


def parse_silent(value: Any) -> dict[str, bool]:
    """DISCORD_SILENT: ``type=true|false`` pairs (or a dict) merged over the defaults."""
    result = dict(SILENT_DEFAULTS)
    if value is None or value == "":
        return result
    pairs = split_pairs(value, "DISCORD_SILENT") if isinstance(value, str) else dict(value)
    for key, flag in pairs.items():
        name = _silent_key(str(key))
        result[name] = _flag(flag, name)
    return result


def is_silent(table: Mapping[str, bool], key: str, levelno: int = 20) -> bool:
    """Whether messages of ``key`` (an alert type, ``digests`` or ``updates``) are silent; a
    type the table does not name is silent below ERROR, like the built-in types."""
    found = table.get(key)
    return found if found is not None else levelno < 40


@dataclass(frozen=True, slots=True)
class LinkButton:
    """A link button: its label and its URL, a Jinja2 template of the record's variables."""

    label: str
    url: str


def _button(item: Any, where: str) -> LinkButton:
    label: Any
    url: Any
    if isinstance(item, LinkButton):
        label, url = item.label, item.url
    elif isinstance(item, Mapping):
        label, url = item.get("label"), item.get("url")
    elif isinstance(item, list | tuple) and len(item) == 2:
        label, url = item
    else:
        raise ValueError(f"{where}: a button is {{'label': ..., 'url': ...}}")
    if not isinstance(label, str) or not isinstance(url, str):
        raise ValueError(f"{where}: a button's label and url are text")
    return check_button(label, url, where, template=True)


def check_button(label: str, url: str, where: str, *, template: bool = False) -> LinkButton:
    """``LinkButton(label, url)`` when Discord would show it, else ``ValueError`` saying why:
    a label of 1-80 characters, an ``https://`` URL of at most 512 characters without spaces
    (a link button must open safely; Discord refuses longer ones). A ``template`` URL is
    checked for its literal ``https://`` start only: what it renders to is checked per record.
    """
    label, url = label.strip(), url.strip()
    if not label or len(label) > BUTTON_LABEL_MAX:
        raise ValueError(
            f"{where}: label {label[:40]!r} must be 1 to {BUTTON_LABEL_MAX} characters"
        )
    if not url.lower().startswith("https://") or len(url) <= len("https://"):
        raise ValueError(f"{where}: url {url[:60]!r} must start with https://")
    if not template and (len(url) > BUTTON_URL_MAX or any(c.isspace() for c in url)):
        raise ValueError(f"{where}: url must be at most {BUTTON_URL_MAX} characters, no spaces")
    return LinkButton(label, url)


def button_items(value: Any, where: str) -> list[Any]:
    """The items of one type's (or one record's) buttons: a list, or a ``{label: url}`` dict."""
    if isinstance(value, Mapping):
        return [(label, url) for label, url in value.items()]
    if isinstance(value, list | tuple):
        return list(value)
    raise ValueError(f"{where}: buttons are a list, or a {{label: url}} mapping")


def parse_buttons(value: Any) -> dict[str, tuple[LinkButton, ...]]:
    """DISCORD_BUTTONS: JSON (or a dict) mapping alert types to at most 5 link buttons."""
    if value is None or value == "":
        return {}
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise ValueError(f"is not JSON ({exc.msg} at character {exc.pos})") from None
    if not isinstance(value, Mapping):
        raise ValueError("must map alert types to lists of buttons")
    result: dict[str, tuple[LinkButton, ...]] = {}
    for alert_type, items in value.items():
        name = normalize_alert_type(str(alert_type))
        buttons = tuple(_button(item, name) for item in button_items(items, name))
        if len(buttons) > BUTTONS_MAX:
            raise ValueError(f"{name}: at most {BUTTONS_MAX} buttons (one action row)")
        result[name] = buttons
    return result


def parse_forum(value: Any) -> tuple[str, ...]:
    """DISCORD_FORUM: the alert types whose webhook posts into a forum or media channel."""
    if value is None or value == "":
        return ()
    items: Iterable[Any] = value.split(",") if isinstance(value, str) else value
    return tuple(sorted({normalize_alert_type(str(item)) for item in items if str(item).strip()}))


def type_lists(value: Any, setting: str) -> dict[str, list[Any]]:
    """``type=a;b`` pairs separated by commas (or a dict of lists or of single values): alert
    type -> its list."""
    if isinstance(value, str):
        value = {k: v.split(";") for k, v in split_pairs(value, setting).items()}
    return {
        normalize_alert_type(str(kind)): [items] if isinstance(items, str | int) else list(items)
        for kind, items in dict(value).items()
    }


def parse_forum_tags(value: Any) -> dict[str, tuple[str, ...]]:
    """DISCORD_FORUM_TAGS: ``type=tagid;tagid`` pairs (or a dict of lists): the forum tags
    applied to the posts of each alert type."""
    if value is None or value == "":
        return {}
    result: dict[str, tuple[str, ...]] = {}
    for name, items in type_lists(value, "DISCORD_FORUM_TAGS").items():
        ids = tuple(dict.fromkeys(str(t).strip() for t in items if str(t).strip()))
        if not all(tag.isdigit() for tag in ids):
            raise ValueError(f"{name}: tag ids are numbers (a forum tag's id, not its name)")
        if len(ids) > TAGS_MAX:
            raise ValueError(f"{name}: at most {TAGS_MAX} tags per post")
        result[name] = ids
    return result


def parse_incident_updates(value: Any) -> str:
    """DISCORD_INCIDENT_UPDATES: ``edit`` or ``message``."""
    text = str(value).strip().lower() if value is not None else EDIT
    if text not in INCIDENT_UPDATES:
        raise ValueError(f"{str(value)[:20]!r} is not edit or message")
    return text


PARSERS: Final = {
    "incident_updates": parse_incident_updates,
    "silent": parse_silent,
    "buttons": parse_buttons,
    "forum": parse_forum,
    "forum_tags": parse_forum_tags,
}
