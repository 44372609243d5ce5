"""Which queued notifications go together in a lane's next message (pure).

The front of the queue decides: a cap set by a split travels with it, and letters that may
repeat an earlier message go only with their kind, as plain embeds carrying the note.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from ..render import message_limits as limits
from ..render.fitting import RenderedNotification
from ..render.packing import DIGEST_MAX_RECORDS
from .pending import Pending


def next_backlog(queue: Iterable[Pending]) -> list[Pending]:
    """The front of ``queue`` that may go in the next message (at least its first entry)."""
    backlog: list[Pending] = []
    cap = DIGEST_MAX_RECORDS
    for pending in queue:
        if backlog:
            if len(backlog) == cap or pending.uncertain != backlog[0].uncertain:
                break
        else:
            cap = pending.cap or DIGEST_MAX_RECORDS
            if pending.uncertain:
                cap = min(cap, limits.EMBEDS_PER_MESSAGE)
        backlog.append(pending)
    return backlog


def plain_prefix(rendered: Sequence[RenderedNotification]) -> list[RenderedNotification]:
    """The longest prefix (at least one) that fits one plain message's 6000 characters."""
    size = 0
    for count, item in enumerate(rendered):
        size += item.size
        if size > limits.MESSAGE_EMBED_TOTAL:
            return list(rendered[: max(1, count)])
    return list(rendered)


def split(carried: Sequence[Pending]) -> None:
    """Halve what Discord refused together: each half travels alone next, recursively, so one
    bad record among n costs about 2 log2(n) messages instead of n."""
    half = (len(carried) + 1) // 2
    for index, pending in enumerate(carried):
        pending.cap = half if index < half else len(carried) - half
