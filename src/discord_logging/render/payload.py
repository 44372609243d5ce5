"""The Execute Webhook body: embeds plus the mention policy that keeps log text from pinging."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

from ..config.alert_options import DIGESTS, UPDATES, is_silent
from . import message_limits as limits
from .packing import OutgoingMessage

# Message flags a webhook may set (discord-api.md, "Message flags a webhook may set"): a
# silent message appears, but sends no push or desktop notification (like a user's @silent).
SUPPRESS_NOTIFICATIONS: Final = 1 << 12


def allowed_mentions(targets: Sequence[str] = ()) -> dict[str, list[str]]:
    """``allowed_mentions`` that lets through exactly ``targets`` and nothing else.

    Always sent: Discord's default when the field is missing is contradictory in its own docs.
    ``parse`` must not name "roles"/"users" when id lists are given, so ids go in their lists.
    """
    result: dict[str, list[str]] = {"parse": []}
    roles = [t.split(":", 1)[1] for t in targets if t.startswith("role:")]
    users = [t.split(":", 1)[1] for t in targets if t.startswith("user:")]
    if roles:
        result["roles"] = roles
    if users:
        result["users"] = users
    if any(t in ("everyone", "here") for t in targets):
        result["parse"] = ["everyone"]  # "everyone" in parse covers both @everyone and @here
    return result


def mention_content(targets: Sequence[str]) -> str | None:
    """The ``content`` line that performs the deliberate pings configured for an alert type."""
    words = []
    for target in targets:
        if target in ("everyone", "here"):
            words.append(f"@{target}")
        else:
            kind, _, ident = target.partition(":")
            words.append(f"<@&{ident}>" if kind == "role" else f"<@{ident}>")
    return " ".join(words)[: limits.CONTENT] or None


def build_payload(
    embeds: Sequence[dict[str, Any]],
    *,
    username: str | None = None,
    avatar_url: str | None = None,
    mentions: Sequence[str] = (),
) -> dict[str, Any]:
    """A JSON body for Execute Webhook; the embeds must already be fitted."""
    payload: dict[str, Any] = {
        "embeds": list(embeds),
        "allowed_mentions": allowed_mentions(mentions),
    }
    content = mention_content(mentions)
    if content:
        payload["content"] = content
    if username:
        payload["username"] = username
    if avatar_url:
        payload["avatar_url"] = avatar_url
    return payload


def silent_flags(message: OutgoingMessage, silent: Mapping[str, bool], pinged: bool) -> int:
    """``flags`` for ``message``: ``SUPPRESS_NOTIFICATIONS`` when what it carries is silent
    (``DISCORD_SILENT``): a digest as ``digests``, an incident's update as ``updates``, else
    only when every record's alert type is silent. A message that pings someone on purpose
    (``DISCORD_MENTIONS``) always notifies."""
    if message.notifications and all(n.silent for n in message.notifications):
        return SUPPRESS_NOTIFICATIONS  # a mute's summary: silent whatever the table says
    if pinged or not message.notifications:
        return 0
    if message.digest:
        quiet = is_silent(silent, DIGESTS)
    elif any(n.is_update for n in message.notifications):
        quiet = is_silent(silent, UPDATES)
    else:
        quiet = all(is_silent(silent, n.alert_type, n.levelno) for n in message.notifications)
    return SUPPRESS_NOTIFICATIONS if quiet else 0
