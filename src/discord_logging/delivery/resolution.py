"""Resolving an incident from code (the worker's loop): its message is edited once to say
resolved, by whom and when, and its next record opens a new incident (docs/architecture.md,
"Mutes, quiet hours and resolving an incident")."""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

from ..capture.snapshot import FINGERPRINT_KEY, fingerprint
from ..coordination import Grant
from ..render import message_limits as limits
from ..transport.outcome import OutcomeKind
from .editor import EDIT_BUCKET

if TYPE_CHECKING:
    from .aggregation import Release, StormAggregator
    from .notifier import Notifier
    from .worker import Worker

RESOLVED_COLOR: Final = 0x2ECC71
RESOLVED_PREFIX: Final = "Resolved: "
ATTEMPTS: Final = 3


def incident_keys(notifier: Notifier, key: str) -> list[str]:
    """``key`` as an incident's fingerprint, and as the user's grouping key
    (``extra={"fingerprint": key}``) of every alert type this notifier knows."""
    types = {kind for kind, _ in notifier.router.table()} | set(notifier.urls)
    return [key, *sorted({fingerprint(kind, FINGERPRINT_KEY, key) for kind in types})]


def resolved_embed(embed: dict[str, Any], note: str, by: str, when: float) -> dict[str, Any]:
    """``embed`` marked resolved: title, green, and a field saying by whom, when, and why."""
    out = dict(embed)
    title = str(out.get("title") or "incident")
    if not title.startswith(RESOLVED_PREFIX):
        out["title"] = (RESOLVED_PREFIX + title)[: limits.EMBED_TITLE]
    out["color"] = RESOLVED_COLOR
    stamp = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(when))
    value = f"by {by} at {stamp}" + (f": {note}" if note else "")
    fields = [f for f in list(out.get("fields") or []) if f.get("name") != "Resolved"]
    fields = fields[: limits.FIELDS_PER_EMBED - 1]
    fields.append({"name": "Resolved", "value": value[: limits.FIELD_VALUE], "inline": False})
    out["fields"] = fields
    return out


async def resolve_incident(
    notifier: Notifier,
    key: str,
    note: str = "",
    *,
    aggregator: StormAggregator[Any] | None = None,
    submit: Callable[[list[Release[Any]]], None] | None = None,
    timeout: float = 10.0,
) -> bool:
    """End incident ``key`` now; True when a message of it was edited to say resolved."""
    deadline = time.monotonic() + timeout
    keys = incident_keys(notifier, key)
    if aggregator is not None and submit is not None:
        for candidate in keys:
            submit(aggregator.end(candidate))  # what it held back goes first, not lost
    by = f"{socket.gethostname()} (pid {os.getpid()})"
    edited = False
    for lane in {id(lane): lane for lane in notifier.lanes.values()}.values():
        board = lane.poster.board
        editor = notifier.editor_of(lane)
        for candidate in keys:
            incident = board.get(candidate)
            if incident is None and (editor is None or editor.fleet is None):
                continue
            while time.monotonic() < deadline and (
                (incident is not None and incident.posting)
                or (editor is not None and editor.waiting(candidate))
            ):
                await asyncio.sleep(0.01)  # its last update is shown first
            if editor is not None:  # the fleet's incident ends for every holder (issue 30)
                incident = await editor.end(candidate) or incident
            if incident is None:
                continue
            message = incident.message
            if message is not None:
                embeds = list(message.embeds)
                embeds[incident.index] = resolved_embed(
                    embeds[incident.index], note, by, time.time()
                )
                if await _edit(lane, message.message_id, message.thread_id, embeds, deadline):
                    message.embeds = embeds
                    edited = True
            board.gone(candidate, thread=True)  # its next record opens a new incident
    return edited


async def _edit(
    lane: Any, message_id: str, thread_id: str | None, embeds: list[Any], deadline: float
) -> bool:
    shared, url = lane.shared, lane.url
    channel = shared.channels.key(url.webhook_id, thread_id or url.thread_id)
    bucket = EDIT_BUCKET.format(webhook=url.webhook_id)
    body = {"embeds": embeds, "allowed_mentions": {"parse": []}}
    for _ in range(ATTEMPTS):
        grant = await shared.coordinator.acquire(channel, url.webhook_id, bucket=bucket)
        while not isinstance(grant, Grant):
            if time.monotonic() + grant > deadline:
                return False
            await asyncio.sleep(grant)
            grant = await shared.coordinator.acquire(channel, url.webhook_id, bucket=bucket)
        left = max(0.1, deadline - time.monotonic())
        result = await shared.client.edit(
            url, message_id, body, thread_id=thread_id, timeout=min(left, shared.client.timeout)
        )
        if result.sent:
            await shared.coordinator.complete(grant, result.headers)
        else:
            await shared.coordinator.give_back(grant)
        kind = result.outcome.kind
        if kind is OutcomeKind.DELIVERED:
            shared.stats.add("edits_sent")
            return True
        if kind not in (OutcomeKind.RETRY, OutcomeKind.RATE_LIMITED):
            return False
        await asyncio.sleep(
            min(result.outcome.retry_after or 0.5, max(0.0, deadline - time.monotonic()))
        )
    return False


def resolve_through(worker: Worker, key: str, note: str, timeout: float) -> bool:
    """:func:`resolve_incident` on ``worker``'s loop, with its storms (from any other thread)."""

    async def run() -> bool:
        return await resolve_incident(
            worker.notifier,
            key,
            note,
            aggregator=worker._aggregator,  # the worker's own storms
            submit=worker._submit,
            timeout=timeout,
        )

    return worker.call(run, timeout + 1.0)
