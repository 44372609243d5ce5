"""How a notifier's lanes end within the close deadline.

No request starts that could not finish by the deadline, and one in flight is cut off at it,
whatever step it is in (transport/cutoff.py): kept as ``uncertain`` when its body went out
whole (Discord may have it), else as certainly not posted. Then the coordinator and the HTTP
client close (the store's thread is the store's: it stops when the store closes).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterable, Sequence
from typing import Final, Protocol

from .editor import IncidentEditor
from .lane import WebhookLane
from .shared import SharedState

IN_FLIGHT_SLACK: Final = 0.1  # seconds past the deadline for a request cut off there to be kept
FLUSH_FAILSAFE: Final = 1.0  # seconds flush() waits at most for a progress it missed


class Busy(Protocol):
    @property
    def busy(self) -> bool: ...


async def until_idle(
    shared: SharedState | None, parts: Sequence[Busy], deadline: float | None
) -> bool:
    """Wait until none of ``parts`` (lanes, editors) is busy, waking on ``shared.progress``
    (set by every step that may leave them idle; docs/architecture.md, "Fewer moving
    parts"), never by polling; False if ``deadline`` (``time.monotonic()``) came first."""
    while any(part.busy for part in parts):
        left = FLUSH_FAILSAFE if deadline is None else deadline - time.monotonic()
        if left <= 0 or shared is None:
            return False
        shared.progress.clear()  # set by the step that may make them idle (nothing ran since)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(shared.progress.wait(), min(left, FLUSH_FAILSAFE))
    return True


async def close_lanes(
    shared: SharedState,
    lanes: Sequence[WebhookLane],
    editors: Iterable[IncidentEditor],
    tasks: Sequence[asyncio.Task[None]],
    deadline: float,
) -> None:
    """End ``lanes`` and ``editors`` (their ``tasks``) by ``deadline`` (``time.monotonic()``,
    the one the close was given): what they cannot deliver by then goes to the dead letters;
    then close what they shared. The lanes read it on their own clock (the same, unless a
    test injected another)."""
    timeout = deadline - time.monotonic()
    shared.closing = True
    shared.deadline = shared.clock() + timeout
    shared.client.cut_off_at(timeout)
    for lane in lanes:
        lane.wake()
    for editor in editors:
        editor.wake()
    _, unfinished = await asyncio.wait(tasks, timeout=max(timeout, 0.0))
    ends = [lane.sending_until for lane in lanes if lane.sending_until]
    if unfinished and ends:  # requests in flight are cut off at the deadline, then kept
        grace = min(max(ends), shared.deadline) - shared.clock() + IN_FLIGHT_SLACK
        _, unfinished = await asyncio.wait(unfinished, timeout=max(grace, 0.0))
    for task in unfinished:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    shared.dead_letters.sync()
    await shared.coordinator.aclose()
    await shared.client.aclose()
