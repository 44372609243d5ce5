"""``SyncNotifier``: notify from synchronous code without logging, on a background worker."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..capture.direct import build_notification
from ..notification import NotificationResult
from ..stats import DeliveryStats
from .worker import Worker

if TYPE_CHECKING:  # httpx, Jinja2, diskcache: imported where they are used, not with the handler
    from ..settings import DiscordSettings
    from .notifier import Notifier


class BlockingSend:
    """``send()`` for synchronous code: build a notification, wait for its outcome on a
    worker thread. Shared by :class:`SyncNotifier` and ``DiscordHandler``."""

    def _sending_worker(self) -> Worker:
        raise NotImplementedError

    def _settings_for_send(self) -> DiscordSettings:
        raise NotImplementedError

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
        """Notify without logging and wait for the outcome (delivered or dead-lettered);
        the blocking twin of ``Notifier.send``."""
        worker = self._sending_worker()
        notification = build_notification(
            alert_type, title, message, color=color, fields=fields, exc=exc
        )
        wait = timeout if timeout is not None else self._settings_for_send().timeout_seconds * 4
        return worker.deliver(notification, wait)


class SyncNotifier(BlockingSend):
    """The blocking twin of :class:`Notifier`: ``send`` waits for the outcome.

    Settings as for :func:`load_settings`; use as a context manager or call ``close()``.
    """

    def __init__(self, **settings: Any) -> None:
        from ..settings import load_settings
        from ..store import limits_directory
        from .notifier import Notifier

        engine_options = settings.pop("engine_options", None) or {}
        self.settings = load_settings(**settings)
        # Counted in the limits every process using the store directory shares.
        engine_options.setdefault("store_dir", limits_directory(self.settings))
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

    def _sending_worker(self) -> Worker:
        return self._worker

    def _settings_for_send(self) -> DiscordSettings:
        return self.settings

    def close(self) -> None:
        """Deliver what is pending within ``close_timeout``, then stop. Idempotent."""
        self._worker.stop(time.monotonic() + self.settings.close_timeout)

    def __enter__(self) -> SyncNotifier:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
