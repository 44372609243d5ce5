"""The webhook body: mention policy, deliberate pings, identity overrides."""

from __future__ import annotations

from discord_schema import validate_webhook_payload

from discord_logging.render.payload import allowed_mentions, build_payload, mention_content

EMBED = {"type": "rich", "title": "t"}


def test_no_mentions_by_default() -> None:
    """Every payload carries allowed_mentions with parse [] and no content."""
    payload = build_payload([EMBED])
    assert payload["allowed_mentions"] == {"parse": []}
    assert "content" not in payload
    validate_webhook_payload(payload)


def test_deliberate_pings_list_exactly_their_ids() -> None:
    """Configured role and user pings go in content and allowed_mentions lists exactly those ids."""
    payload = build_payload([EMBED], mentions=("role:123", "user:456"))
    assert payload["content"] == "<@&123> <@456>"
    assert payload["allowed_mentions"] == {"parse": [], "roles": ["123"], "users": ["456"]}
    validate_webhook_payload(payload)


def test_here_needs_everyone_in_parse() -> None:
    """A configured @here is allowed through parse ['everyone'] and nothing else."""
    assert allowed_mentions(("here",)) == {"parse": ["everyone"]}
    assert mention_content(("here", "role:1")) == "@here <@&1>"
    assert mention_content(()) is None


def test_username_and_avatar() -> None:
    """Identity overrides are passed through."""
    payload = build_payload([EMBED], username="alerts", avatar_url="https://x.example/a.png")
    assert payload["username"] == "alerts"
    assert payload["avatar_url"] == "https://x.example/a.png"
    validate_webhook_payload(payload)
