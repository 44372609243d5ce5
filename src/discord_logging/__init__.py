"""discord_logging: a stdlib logging handler that turns log records into Discord alerts.

Public names are imported on first use (PEP 562): pytest imports this package early for the
``fake_discord`` fixture, and an application that only needs the handler pays for no more.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from .alerts import AlertType
    from .capture.guard import ignore_logger
    from .deadletters import DeadLetter, DeadLetterReason, DeadLetterSink, MemoryDeadLetters
    from .delivery.blocking import SyncNotifier
    from .delivery.notification_channel import DiscordChannel
    from .delivery.notifier import Notifier
    from .errors import ConfigurationError, DiscordLoggingError, InvalidWebhookURL, TemplateError
    from .handler import DiscordHandler
    from .notification import (
        DeliveryStatus,
        Notification,
        NotificationChannel,
        NotificationResult,
    )
    from .settings import DiscordSettings, load_settings

_HOMES = {
    "AlertType": "alerts",
    "ConfigurationError": "errors",
    "DeadLetter": "deadletters",
    "DeadLetterReason": "deadletters",
    "DeadLetterSink": "deadletters",
    "DeliveryStatus": "notification",
    "DiscordChannel": "delivery.notification_channel",
    "DiscordHandler": "handler",
    "DiscordLoggingError": "errors",
    "DiscordSettings": "settings",
    "InvalidWebhookURL": "errors",
    "MemoryDeadLetters": "deadletters",
    "Notification": "notification",
    "NotificationChannel": "notification",
    "NotificationResult": "notification",
    "Notifier": "delivery.notifier",
    "SyncNotifier": "delivery.blocking",
    "TemplateError": "errors",
    "ignore_logger": "capture.guard",
    "load_settings": "settings",
}
__all__ = [
    "AlertType",
    "ConfigurationError",
    "DeadLetter",
    "DeadLetterReason",
    "DeadLetterSink",
    "DeliveryStatus",
    "DiscordChannel",
    "DiscordHandler",
    "DiscordLoggingError",
    "DiscordSettings",
    "InvalidWebhookURL",
    "MemoryDeadLetters",
    "Notification",
    "NotificationChannel",
    "NotificationResult",
    "Notifier",
    "SyncNotifier",
    "TemplateError",
    "__version__",
    "ignore_logger",
    "load_settings",
]


def __getattr__(name: str) -> Any:
    """Import a public name from its module on first use."""
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{home}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
