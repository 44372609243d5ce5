"""A handler whose start-up is over, for tests of what start-up refuses.

``DiscordHandler(...)`` checks its settings where it is created; what only the start finds
(the delivery engine's own checks) is raised by ``wait_started()``, as a deploy that wants to
fail fast asks for it.
"""

from __future__ import annotations

from typing import Any

from discord_logging import DiscordHandler


def started_handler(*args: Any, **options: Any) -> DiscordHandler:
    """``DiscordHandler(*args, **options)`` once started; what start-up refuses raises here
    (ConfigurationError, as from ``wait_started()``), with the handler closed."""
    handler = DiscordHandler(*args, **options)
    try:
        handler.wait_started()
    except BaseException:
        handler.close()
        raise
    return handler
