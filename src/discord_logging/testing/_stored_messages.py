"""A webhook's messages after they were posted: read (``GET``), edited (``PATCH``) and deleted
(``DELETE``) at ``/webhooks/{id}/{token}/messages/{message_id}``, as Discord does it
(discord-api.md, "Editing, reading and deleting a webhook's own messages")."""

from __future__ import annotations

from typing import Any, Final

from discord_logging.testing._models import StoredMessage
from discord_logging.testing._validation import EMPTY_MESSAGE, Errors, Rejection

UNKNOWN_MESSAGE: Final = Rejection(404, {"message": "Unknown Message", "code": 10008})
# Fields an edit replaces when it sends them; everything else stays as it was.
_EDITABLE: Final = ("content", "embeds", "components", "allowed_mentions", "flags")


def find(
    messages: dict[str, StoredMessage],
    webhook_id: str,
    message_id: str,
    thread_id: str | None,
) -> StoredMessage | Rejection:
    """The message, or 10008 Unknown Message: deleted, another webhook's, or in a thread the
    request does not name (a message in a thread is reached only with its ``thread_id``)."""
    stored = messages.get(message_id)
    if stored is None or stored.webhook_id != webhook_id or stored.thread_id != thread_id:
        return UNKNOWN_MESSAGE
    return stored


def apply_edit(
    stored: StoredMessage,
    payload: dict[str, Any],
    files: dict[str, tuple[str, bytes]],
    new_ids: list[str],
    now: float,
) -> Rejection | None:
    """Change ``stored`` as the edit says, or refuse it (changing nothing). ``attachments``,
    when sent, lists every file the message keeps (by id) and the new ones (by the index of
    their ``files[N]`` part); without it, new files are added to those it has."""
    attachments = list(stored.attachments)
    listed = payload.get("attachments")
    uploads = list(files.values())
    if listed is not None:
        kept = _kept_attachments(stored, listed, len(uploads))
        if isinstance(kept, Rejection):
            return kept
        attachments = kept
    for new_id, (filename, data) in zip(new_ids, uploads, strict=False):
        attachments.append({"id": new_id, "filename": filename, "size": len(data), "data": data})
    after = dict(stored.payload)
    for key in _EDITABLE:
        if key in payload:
            after[key] = payload[key]
    if not (str(after.get("content") or "").strip() or after.get("embeds") or attachments):
        return EMPTY_MESSAGE
    stored.payload, stored.attachments = after, attachments
    stored.edited_at = now
    stored.edits += 1
    return None


def _kept_attachments(
    stored: StoredMessage, listed: Any, uploads: int
) -> list[dict[str, Any]] | Rejection:
    errors = Errors()
    existing = {a["id"]: a for a in stored.attachments}
    kept: list[dict[str, Any]] = []
    if not isinstance(listed, list):
        errors.add(("attachments",), "LIST_TYPE_CONVERT", "Only iterables may be used")
        listed = []
    for index, item in enumerate(listed):
        ident = str(item.get("id")) if isinstance(item, dict) else None
        if ident in existing:
            kept.append(existing[ident])
        elif ident is None or not ident.isdigit() or int(ident) >= uploads:
            errors.add(("attachments", index, "id"), "ATTACHMENT_NOT_FOUND", "Unknown file.")
    if errors:
        body = {"message": "Invalid Form Body", "code": 50035, "errors": errors.tree}
        return Rejection(400, body)
    return kept
