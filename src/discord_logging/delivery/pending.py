"""A notification waiting in a lane, with its delivery bookkeeping."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from ..notification import Notification, NotificationResult
from ..render.fitting import RenderedNotification


@dataclass(slots=True)
class Pending:
    """A notification waiting in a lane, with its delivery bookkeeping."""

    notification: Notification
    attempts: int = 0
    first_attempt: float | None = None
    rendered: RenderedNotification | None = None
    cap: int | None = None  # most notifications it may travel with (halved after a 400)
    no_attachment: bool = False  # resend without the file (after a 413)
    from_dead_letters: bool = False
    uncertain: bool = False  # was cut off in flight once: its message says it may repeat
    settled: bool = False  # delivered or dead-lettered: the lane is done with it
    future: asyncio.Future[NotificationResult] | None = None
