"""Checks of the message options a plain webhook may send, as Discord makes them: flags,
link-button components, a forum post's title and tags (discord-api.md: "Message flags a
webhook may set", "Components on plain webhooks", "Forum and media channels, threads")."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from discord_logging.testing._validation import Errors

SUPPRESS_EMBEDS: Final = 1 << 2
SUPPRESS_NOTIFICATIONS: Final = 1 << 12
IS_COMPONENTS_V2: Final = 1 << 15
# The only flags Execute Webhook (and an edit) may set; any other bit is refused.
ALLOWED_FLAGS: Final = SUPPRESS_EMBEDS | SUPPRESS_NOTIFICATIONS | IS_COMPONENTS_V2
ACTION_ROW: Final = 1
BUTTON: Final = 2
LINK: Final = 5
ROWS_MAX: Final = 5
ROW_ITEMS_MAX: Final = 5
LABEL_MAX: Final = 80
URL_MAX: Final = 512
POST_TITLE_MAX: Final = 100
TAGS_MAX: Final = 5


def check_flags(errors: Errors, payload: dict[str, Any]) -> None:
    """``flags``: an integer of only the allowed bits; with IS_COMPONENTS_V2 the message is
    laid out by components alone, so ``content`` and ``embeds`` are refused."""
    flags = payload.get("flags")
    if flags is None:
        return
    if not isinstance(flags, int) or isinstance(flags, bool):
        errors.add(("flags",), "NUMBER_TYPE_COERCE", f'Value "{flags}" is not int.')
        return
    if flags & ~ALLOWED_FLAGS or flags < 0:
        errors.add(("flags",), "MESSAGE_FLAGS_INVALID", "Invalid flags for this message.")
    if flags & IS_COMPONENTS_V2 and (payload.get("content") or payload.get("embeds")):
        errors.add(
            ("flags",),
            "MESSAGE_CANNOT_USE_LEGACY_FIELDS_WITH_COMPONENTS_V2",
            "content and embeds cannot be used with IS_COMPONENTS_V2",
        )


def check_components(errors: Errors, components: Any) -> None:
    """Action rows of link buttons only: a webhook no application owns cannot send
    interactive components (buttons with a custom_id, select menus)."""
    where: tuple[str | int, ...] = ("components",)
    if not isinstance(components, list):
        errors.add(where, "LIST_TYPE_CONVERT", "Only iterables may be used in a ListType")
        return
    if len(components) > ROWS_MAX:
        errors.add(where, "BASE_TYPE_MAX_LENGTH", f"Must be {ROWS_MAX} or fewer in length.")
    for index, row in enumerate(components):
        at = (*where, index)
        if not isinstance(row, dict) or row.get("type") != ACTION_ROW:
            errors.add(at, "COMPONENT_TYPE_INVALID", "The component type is invalid here.")
            continue
        items = row.get("components")
        if not isinstance(items, list) or not 1 <= len(items) <= ROW_ITEMS_MAX:
            msg = f"Must be between 1 and {ROW_ITEMS_MAX} in length."
            errors.add((*at, "components"), "BASE_TYPE_BAD_LENGTH", msg)
            continue
        for position, item in enumerate(items):
            _check_link_button(errors, item, (*at, "components", position))


def _check_link_button(errors: Errors, item: Any, at: tuple[str | int, ...]) -> None:
    if not isinstance(item, dict) or item.get("type") != BUTTON or item.get("style") != LINK:
        errors.add(
            at,
            "INTERACTION_COMPONENTS_REQUIRE_APPLICATION_WEBHOOK",
            "Only link buttons may be sent by a webhook not owned by an application.",
        )
        return
    if "custom_id" in item:
        errors.add((*at, "custom_id"), "BUTTON_LINK_CANNOT_HAVE_CUSTOM_ID", "Link buttons "
                   "cannot have a custom_id.")  # fmt: skip
    url, label = item.get("url"), item.get("label")
    if not isinstance(url, str) or not url.lower().startswith(("https://", "http://")):
        errors.add((*at, "url"), "URL_TYPE_INVALID_URL", "Not a well formed URL.")
    elif len(url) > URL_MAX:
        errors.add((*at, "url"), "BASE_TYPE_MAX_LENGTH", f"Must be {URL_MAX} or fewer in length.")
    if label is None and item.get("emoji") is None:
        errors.add((*at, "label"), "BUTTON_LABEL_OR_EMOJI_REQUIRED", "A label or emoji is "
                   "required.")  # fmt: skip
    elif label is not None and (not isinstance(label, str) or len(label) > LABEL_MAX):
        msg = f"Must be {LABEL_MAX} or fewer in length."
        errors.add((*at, "label"), "BASE_TYPE_MAX_LENGTH", msg)


def check_post(errors: Errors, payload: dict[str, Any]) -> None:
    """``thread_name`` (a new forum post's title, 1-100 characters) and ``applied_tags``
    (at most 5 tag ids)."""
    name = payload.get("thread_name")
    if name is not None and (not isinstance(name, str) or not 1 <= len(name) <= POST_TITLE_MAX):
        msg = f"Must be between 1 and {POST_TITLE_MAX} in length."
        errors.add(("thread_name",), "BASE_TYPE_BAD_LENGTH", msg)
    tags = payload.get("applied_tags")
    if tags is None:
        return
    if not isinstance(tags, list) or len(tags) > TAGS_MAX:
        msg = f"Must be {TAGS_MAX} or fewer in length."
        errors.add(("applied_tags",), "BASE_TYPE_MAX_LENGTH", msg)
    elif not all(isinstance(t, str | int) and str(t).isdigit() for t in tags):
        errors.add(("applied_tags",), "SNOWFLAKE_TYPE_INVALID", "Value is not snowflake.")
