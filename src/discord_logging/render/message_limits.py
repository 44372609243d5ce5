"""Discord's message limits, as documented for Execute Webhook (see docs/architecture.md).

Discord does not say whether it counts code points or UTF-16 units; we count UTF-16 units,
which are never fewer, so a payload we accept is one Discord accepts either way.
"""

from __future__ import annotations

from typing import Final

CONTENT: Final = 2000
EMBEDS_PER_MESSAGE: Final = 10
EMBED_TITLE: Final = 256
EMBED_DESCRIPTION: Final = 4096
FIELDS_PER_EMBED: Final = 25
FIELD_NAME: Final = 256
FIELD_VALUE: Final = 1024
FOOTER_TEXT: Final = 2048
AUTHOR_NAME: Final = 256
MESSAGE_EMBED_TOTAL: Final = 6000
USERNAME_MIN: Final = 1
USERNAME_MAX: Final = 80
COLOR_MAX: Final = 0xFFFFFF
FILES_PER_MESSAGE: Final = 10
FILE_BYTES: Final = 10 * 1024 * 1024
FORBIDDEN_USERNAME_WORDS: Final = ("discord", "clyde")
POST_TITLE: Final = 100  # a forum post's title (IncomingWebhookRequestPartial.thread_name)


def text_length(text: str) -> int:
    """Length of ``text`` as Discord may count it: UTF-16 code units (the larger count)."""
    if text.isascii():
        return len(text)
    # Characters outside the BMP take two UTF-16 units; all others one.
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def embed_length(embed: dict[str, object]) -> int:
    """Characters an embed contributes to the 6000 total of its message."""
    total = 0
    for key in ("title", "description"):
        value = embed.get(key)
        if isinstance(value, str):
            total += text_length(value)
    footer = embed.get("footer")
    if isinstance(footer, dict) and isinstance(footer.get("text"), str):
        total += text_length(footer["text"])
    author = embed.get("author")
    if isinstance(author, dict) and isinstance(author.get("name"), str):
        total += text_length(author["name"])
    fields = embed.get("fields")
    if isinstance(fields, list):
        for field in fields:
            if isinstance(field, dict):
                total += text_length(str(field.get("name", "")))
                total += text_length(str(field.get("value", "")))
    return total
