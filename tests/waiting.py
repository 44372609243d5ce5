"""Waits in tests: on the thing itself (a condition, an event, the fake's own state), each with
one generous failsafe, so that a test never depends on the machine being idle.

``FAILSAFE`` only bounds a broken run: a passing test stops waiting the moment its condition
holds, so a long failsafe costs nothing when things work and keeps a loaded 2-core machine
(other suites beside, busy loops) from failing a test by chance. Assertions about timing are
made on order and counts, never on how long something took (speed goes to benchmarks/).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Final

FAILSAFE: Final = 60.0


def wait_for(condition: Callable[[], bool], deadline: float = FAILSAFE) -> bool:
    """Poll ``condition`` until true (True) or ``deadline`` seconds passed (its last value)."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if condition():
            return True
        time.sleep(0.02)
    return condition()
