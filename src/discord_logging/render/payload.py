"""The Execute Webhook body: embeds plus the mention policy that keeps log text from pinging."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from . import message_limits as limits


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
