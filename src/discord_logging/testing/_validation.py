"""Payload parsing and validation the way Discord's Execute Webhook does it.

Every check mirrors a limit in ``discord_logging.render.message_limits``; a failing payload
yields Discord's
``400 {"message": "Invalid Form Body", "code": 50035, "errors": {...}}`` where ``errors`` is a
tree keyed by the JSON path (list indexes as strings) with ``_errors`` lists at the leaves.
"""

from __future__ import annotations

import email.parser
import email.policy
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from discord_logging.render import message_limits as limits
from discord_logging.render.text import is_blank
from discord_logging.testing._components import check_components, check_flags, check_post

#: Discord's default upload cap for a whole request (non-boosted guild); above it: 413 / 40005.
REQUEST_BYTES = 25 * 1024 * 1024

_MENTION_TYPES = ("roles", "users", "everyone")


@dataclass(frozen=True)
class Rejection:
    """A Discord error answer: HTTP status and JSON body."""

    status: int
    body: dict[str, Any]

    @property
    def code(self) -> int:
        """Discord's JSON error code."""
        return int(self.body.get("code", 0))


@dataclass(frozen=True)
class Accepted:
    """A valid message: its JSON payload and uploaded files."""

    payload: dict[str, Any]
    files: dict[str, tuple[str, bytes]] = field(default_factory=dict)


INVALID_JSON = Rejection(400, {"message": "The request body contains invalid JSON.", "code": 50109})
EMPTY_MESSAGE = Rejection(400, {"message": "Cannot send an empty message", "code": 50006})
TOO_LARGE = Rejection(413, {"message": "Request entity too large", "code": 40005})


class Errors:
    """Builds Discord's nested ``errors`` tree."""

    def __init__(self) -> None:
        self.tree: dict[str, Any] = {}

    def add(self, path: tuple[str | int, ...], code: str, message: str) -> None:
        node = self.tree
        for part in path:
            node = node.setdefault(str(part), {})
        node.setdefault("_errors", []).append({"code": code, "message": message})

    def __bool__(self) -> bool:
        return bool(self.tree)


def parse_body(
    content_type: str, body: bytes, *, with_components: bool = False, edit: bool = False
) -> Accepted | Rejection:
    """Decode a request body (JSON or multipart/form-data) and validate it like Discord
    (an ``edit`` needs no content: it changes only what it sends)."""
    mime = content_type.split(";", 1)[0].strip().lower()
    files: dict[str, tuple[str, bytes]] = {}
    payload: Any
    if mime == "application/json":
        try:
            payload = json.loads(body)
        except ValueError:
            return INVALID_JSON
    elif mime == "multipart/form-data":
        parsed = _parse_multipart(content_type, body)
        if isinstance(parsed, Rejection):
            return parsed
        payload, files = parsed
    else:
        # Discord ignores bodies it cannot decode: the message is then simply empty.
        payload = {}
    return validate(payload, files, with_components=with_components, edit=edit)


def _parse_multipart(
    content_type: str, body: bytes
) -> tuple[Any, dict[str, tuple[str, bytes]]] | Rejection:
    """Split multipart into ``payload_json`` and the files (every part with a filename)."""
    head = b"Content-Type: " + content_type.encode("latin-1", "replace") + b"\r\n\r\n"
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
    payload: Any = {}
    files: dict[str, tuple[str, bytes]] = {}
    if not message.is_multipart():
        return payload, files
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        filename = part.get_filename()
        raw = part.get_payload(decode=True)
        data = raw if isinstance(raw, bytes) else b""
        if filename is not None:
            files[str(name or f"files[{len(files)}]")] = (filename, data)
        elif name == "payload_json":
            try:
                payload = json.loads(data)
            except ValueError:
                return INVALID_JSON
    return payload, files


def validate(
    payload: Any,
    files: dict[str, tuple[str, bytes]],
    *,
    with_components: bool = False,
    edit: bool = False,
) -> Accepted | Rejection:
    """Check ``payload`` and ``files`` against every Execute Webhook limit. Components are
    checked with ``with_components``; without it Discord ignores them, and so does this."""
    if any(len(data) > limits.FILE_BYTES for _, data in files.values()):
        return TOO_LARGE
    errors = Errors()
    if not isinstance(payload, dict):
        errors.add((), "DICT_TYPE_CONVERT", "Only dictionaries may be used in a DictType")
        return _invalid(errors)
    _check_text(errors, payload, "content", limits.CONTENT)
    _check_username(errors, payload.get("username"))
    embeds = payload.get("embeds")
    if embeds is not None:
        _check_embeds(errors, embeds)
    mentions = payload.get("allowed_mentions")
    if mentions is not None:
        _check_allowed_mentions(errors, mentions)
    if len(files) > limits.FILES_PER_MESSAGE:
        errors.add(("files",), "BASE_TYPE_MAX_LENGTH", _max_len(limits.FILES_PER_MESSAGE))
    check_flags(errors, payload)
    if not with_components:
        payload = {k: v for k, v in payload.items() if k != "components"}
    elif payload.get("components") is not None:
        check_components(errors, payload["components"])
    if not edit:
        check_post(errors, payload)
    if errors:
        return _invalid(errors)
    if edit:
        return Accepted(payload, files)
    # Discord trims content, so whitespace alone does not make a message.
    content = payload.get("content")
    has_content = isinstance(content, str) and content.strip() != ""
    if not (has_content or embeds or files):
        return EMPTY_MESSAGE
    return Accepted(payload, files)


def _invalid(errors: Errors) -> Rejection:
    return Rejection(400, {"message": "Invalid Form Body", "code": 50035, "errors": errors.tree})


def _max_len(limit: int) -> str:
    return f"Must be {limit} or fewer in length."


def _check_text(
    errors: Errors,
    obj: dict[str, Any],
    key: str,
    limit: int,
    path: tuple[str | int, ...] = (),
    *,
    required: bool = False,
) -> None:
    """A string field: present when required, non-empty when required, at most ``limit`` long."""
    value = obj.get(key)
    where = (*path, key)
    if value is None:
        if required:
            errors.add(where, "BASE_TYPE_REQUIRED", "This field is required")
        return
    if not isinstance(value, str):
        errors.add(where, "STRING_TYPE_CONVERT", f'Could not interpret "{value}" as string.')
    elif (required or (path and value)) and is_blank(value):
        # Discord trims text, then rejects field names/values, footer text and author names
        # left empty; a blank title or description is refused here too (the cautious reading).
        errors.add(where, "BASE_TYPE_REQUIRED", "This field is required")
    elif limits.text_length(value) > limit:
        errors.add(where, "BASE_TYPE_MAX_LENGTH", _max_len(limit))


def _check_username(errors: Errors, username: Any) -> None:
    if username is None:
        return
    if not isinstance(username, str):
        errors.add(("username",), "STRING_TYPE_CONVERT", "Could not interpret as string.")
        return
    length = limits.text_length(username)
    if not limits.USERNAME_MIN <= length <= limits.USERNAME_MAX:
        msg = f"Must be between {limits.USERNAME_MIN} and {limits.USERNAME_MAX} in length."
        errors.add(("username",), "BASE_TYPE_BAD_LENGTH", msg)
    # Observed: Discord refuses overrides containing its own or its bot's name, any case.
    for word in limits.FORBIDDEN_USERNAME_WORDS:
        if word in username.lower():
            errors.add(
                ("username",), "USERNAME_INVALID_CONTAINS", f'Username cannot contain "{word}"'
            )


def _check_embeds(errors: Errors, embeds: Any) -> None:
    if not isinstance(embeds, list):
        errors.add(("embeds",), "LIST_TYPE_CONVERT", "Only iterables may be used in a ListType")
        return
    if len(embeds) > limits.EMBEDS_PER_MESSAGE:
        errors.add(("embeds",), "BASE_TYPE_MAX_LENGTH", _max_len(limits.EMBEDS_PER_MESSAGE))
    for index, embed in enumerate(embeds):
        _check_embed(errors, embed, ("embeds", index))
    # The 6000 cap is on the sum over ALL embeds of the message, not per embed.
    if all(isinstance(embed, dict) for embed in embeds):
        total = sum(limits.embed_length(embed) for embed in embeds)
        if total > limits.MESSAGE_EMBED_TOTAL:
            errors.add(
                ("embeds",),
                "MAX_EMBED_SIZE_EXCEEDED",
                f"Embed size exceeds maximum size of {limits.MESSAGE_EMBED_TOTAL}",
            )


def _check_embed(errors: Errors, embed: Any, path: tuple[str | int, ...]) -> None:
    if not isinstance(embed, dict):
        errors.add(path, "DICT_TYPE_CONVERT", "Only dictionaries may be used in a DictType")
        return
    _check_text(errors, embed, "title", limits.EMBED_TITLE, path)
    _check_text(errors, embed, "description", limits.EMBED_DESCRIPTION, path)
    _check_color(errors, embed.get("color"), (*path, "color"))
    _check_timestamp(errors, embed.get("timestamp"), (*path, "timestamp"))
    footer = embed.get("footer")
    if footer is not None:
        if isinstance(footer, dict):
            _check_text(
                errors, footer, "text", limits.FOOTER_TEXT, (*path, "footer"), required=True
            )
        else:
            errors.add((*path, "footer"), "DICT_TYPE_CONVERT", "Only dictionaries may be used")
    author = embed.get("author")
    if author is not None:
        if isinstance(author, dict):
            _check_text(
                errors, author, "name", limits.AUTHOR_NAME, (*path, "author"), required=True
            )
        else:
            errors.add((*path, "author"), "DICT_TYPE_CONVERT", "Only dictionaries may be used")
    fields = embed.get("fields")
    if fields is None:
        return
    where = (*path, "fields")
    if not isinstance(fields, list):
        errors.add(where, "LIST_TYPE_CONVERT", "Only iterables may be used in a ListType")
        return
    if len(fields) > limits.FIELDS_PER_EMBED:
        errors.add(where, "BASE_TYPE_MAX_LENGTH", _max_len(limits.FIELDS_PER_EMBED))
    for index, item in enumerate(fields):
        if not isinstance(item, dict):
            errors.add((*where, index), "DICT_TYPE_CONVERT", "Only dictionaries may be used")
            continue
        _check_text(errors, item, "name", limits.FIELD_NAME, (*where, index), required=True)
        _check_text(errors, item, "value", limits.FIELD_VALUE, (*where, index), required=True)


def _check_color(errors: Errors, color: Any, path: tuple[str | int, ...]) -> None:
    if color is None:
        return
    # bool is an int subclass in Python; Discord's JSON has no such overlap.
    if not isinstance(color, int) or isinstance(color, bool):
        errors.add(path, "NUMBER_TYPE_COERCE", f'Value "{color}" is not int.')
    elif color < 0:
        errors.add(path, "NUMBER_TYPE_MIN", "int value should be greater than or equal to 0.")
    elif color > limits.COLOR_MAX:
        msg = f"int value should be less than or equal to {limits.COLOR_MAX}."
        errors.add(path, "NUMBER_TYPE_MAX", msg)


def _check_timestamp(errors: Errors, timestamp: Any, path: tuple[str | int, ...]) -> None:
    if timestamp is None:
        return
    try:
        if not isinstance(timestamp, str):
            raise TypeError(timestamp)
        datetime.fromisoformat(timestamp)
    except (TypeError, ValueError):
        errors.add(
            path, "DATE_TIME_TYPE_PARSE", f'Could not parse "{timestamp}". Should be ISO8601.'
        )


def _check_allowed_mentions(errors: Errors, mentions: Any) -> None:
    where: tuple[str | int, ...] = ("allowed_mentions",)
    if not isinstance(mentions, dict):
        errors.add(where, "DICT_TYPE_CONVERT", "Only dictionaries may be used in a DictType")
        return
    parse = mentions.get("parse", [])
    if not isinstance(parse, list):
        errors.add((*where, "parse"), "LIST_TYPE_CONVERT", "Only iterables may be used")
        parse = []
    for index, kind in enumerate(parse):
        if kind not in _MENTION_TYPES:
            msg = "Value must be one of ('roles', 'users', 'everyone')."
            errors.add((*where, "parse", index), "BASE_TYPE_CHOICES", msg)
    for kind in ("roles", "users"):
        ids = mentions.get(kind)
        if ids is None:
            continue
        if not isinstance(ids, list):
            errors.add((*where, kind), "LIST_TYPE_CONVERT", "Only iterables may be used")
        elif kind in parse:
            # Discord: `parse: ["users"]` and an explicit `users` list are mutually exclusive.
            msg = f'parse:["{kind}"] and {kind}: [ids...] are mutually exclusive.'
            errors.add(where, "MESSAGE_ALLOWED_MENTIONS_PARSE_EXCLUSIVE", msg)
