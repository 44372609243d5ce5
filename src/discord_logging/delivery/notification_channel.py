"""Discord as a :class:`~discord_logging.notification.NotificationChannel`."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from ..notification import Notification, NotificationChannel, NotificationResult
from .notifier import Notifier


class DiscordChannel(NotificationChannel):
    """Discord as a :class:`NotificationChannel`: each notification goes through a Notifier's
    lanes (routing, limits, batching, retries, dead letters) and its outcome comes back."""

    def __init__(self, notifier: Notifier) -> None:
        self.notifier = notifier

    async def send(self, notifications: Sequence[Notification]) -> list[NotificationResult]:
        return list(
            await asyncio.gather(*(self.notifier.send_notification(n) for n in notifications))
        )

    async def aclose(self) -> None:
        await self.notifier.aclose()
