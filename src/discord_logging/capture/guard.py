"""The recursion guard, on the caller's thread: records of loggers that must never reach
Discord (the library's own, the HTTP stack's, which logs every request URL with its token)
are dropped before anything else is done with them."""

from __future__ import annotations

import threading
from typing import Final

# Our own logger, and the HTTP stack's: httpx logs every request URL (token included) at INFO,
# and a record about sending a record must never be sent.
_IGNORED: set[str] = {"discord_logging", "httpx", "httpcore", "hpack", "h2"}
_IGNORED_LOCK: Final = threading.Lock()
_VERDICTS: dict[str, bool] = {}  # logger name -> ignored?, so emit does one dict lookup


def ignore_logger(name: str) -> None:
    """Never send records of logger ``name`` (and its children) to Discord."""
    with _IGNORED_LOCK:
        _IGNORED.add(name)
        _VERDICTS.clear()


def is_ignored(name: str) -> bool:
    verdict = _VERDICTS.get(name)
    if verdict is None:
        verdict = any(name == i or name.startswith(i + ".") for i in list(_IGNORED))
        if len(_VERDICTS) < 10_000:
            _VERDICTS[name] = verdict
    return verdict
