"""``SyncNotifier``: notify from synchronous code without logging, on a background worker."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .notification import NotificationResult
from .notifier import Notifier, build_notification
from .settings import load_settings
from .stats import DeliveryStats
from .worker import Worker


class SyncNotifier:
    """The blocking twin of :class:`Notifier`: ``send`` waits for the outcome.

    Settings as for :func:`load_settings`; use as a context manager or call ``close()``.
    """

    def __init__(self, **settings: Any) -> None:
        engine_options = settings.pop("engine_options", None) or {}
        self.settings = load_settings(**settings)
        self.stats = DeliveryStats()
        Notifier(self.settings, stats=self.stats, **engine_options)  # validate now, loudly
        self._worker = Worker(
            lambda: Notifier(self.settings, stats=self.stats, **engine_options),
            aggregate_window=0,
            stats=self.stats,
        )
        self._worker.start()

    @property
    def notifier(self) -> Notifier:
        """The async engine underneath (lives on the worker's loop)."""
        return self._worker.notifier

    def send(
        self,
        alert_type: str,
        title: str,
        message: str = "",
        *,
        color: int | None = None,
        fields: Mapping[str, object] | None = None,
        exc: BaseException | None = None,
        timeout: float | None = None,
    ) -> NotificationResult:
        """Send one notification and wait for its outcome (delivered or dead-lettered)."""
        notification = build_notification(
            alert_type, title, message, color=color, fields=fields, exc=exc
        )
        wait = timeout if timeout is not None else self.settings.timeout_seconds * 4
        return self._worker.deliver(notification, wait)

    def close(self) -> None:
        """Deliver what is pending within ``close_timeout``, then stop. Idempotent."""
        self._worker.stop(self.settings.close_timeout)

    def __enter__(self) -> SyncNotifier:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
