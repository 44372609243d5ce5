"""The close deadline on the HTTP edge: a request in flight ends by it, whatever step it is in.

httpx's timeouts bound each step of a request, not the request: the name lookup, the connect,
TLS, each write and each read may take the whole ``timeout`` in turn, and a read is renewed by
every byte that arrives. A Discord that takes the connection and never answers would hold the
exit for the request's timeout (issue 19: 31.6 s with ``close_timeout=2, timeout=30``). So
every request runs inside an ``asyncio`` timeout that the close moves to its deadline
(:meth:`Cutoff.cut_at`); the request is then cancelled on the worker's loop, whatever it
waits for. httpcore's trace events (:class:`Progress`) say how far it got: only a request
whose body went out whole may have been acted on (Discord acts on a whole request only).
Where they cannot tell (a custom transport; through a proxy's tunnel, whose ``CONNECT``
reports too) the answer errs towards "maybe posted": the repeat note, never a silent repeat.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Final

# httpcore's trace events (prefixed by the protocol: http11., http2.) that mark the request
# leaving: its first byte (Discord may count it against a limit) and its last (whole: Discord
# may act on it).
HEADERS_STARTED: Final = ".send_request_headers.started"
BODY_COMPLETE: Final = ".send_request_body.complete"


class Progress:
    """How far one request got, from httpcore's ``trace`` extension. ``traced``: the request
    goes through httpcore, which reports every step; a custom transport may report none, and
    then how far it got is unknown."""

    __slots__ = ("_sent", "_traced", "_written")

    def __init__(self, *, traced: bool) -> None:
        self._traced = traced
        self._sent = False
        self._written = False

    async def trace(self, event: str, info: dict[str, Any]) -> None:
        """The ``trace`` extension's callback (httpcore awaits it on the async path)."""
        if event.endswith(HEADERS_STARTED):
            self._sent = True
        elif event.endswith(BODY_COMPLETE):
            self._written = True

    @property
    def sent(self) -> bool:
        """Whether any of the request may have reached Discord (unknown counts as yes)."""
        return self._sent or not self._traced

    @property
    def written(self) -> bool:
        """Whether the request may have reached Discord whole (unknown counts as yes: the
        lost-answer rule then marks it, never a silent repeat)."""
        return self._written or not self._traced

    @property
    def step(self) -> str:
        """The step it was cut off in, for the dead letter's error."""
        if not self._traced:
            return "in flight"
        if self._written:
            return "waiting for the answer"
        return "sending the request" if self._sent else "connecting"


class Cutoff:
    """One deadline for every request of a client: none outlives it once it is set."""

    def __init__(self) -> None:
        self._at: float | None = None  # on the loop's clock
        self._active: set[asyncio.Timeout] = set()

    def cut_at(self, seconds: float) -> None:
        """From now on no request outlives ``seconds`` from now: those in flight are
        cancelled then, those to come too. Only ever brought forward. On the client's loop."""
        at = asyncio.get_running_loop().time() + max(0.0, seconds)
        if self._at is not None and self._at <= at:
            return
        self._at = at
        # Each one ends at the earlier deadline (or none), not yet reached: none has expired.
        for timeout in list(self._active):
            timeout.reschedule(at)

    @asynccontextmanager
    async def bounded(self) -> AsyncIterator[None]:
        """Run the body until the deadline at most (``TimeoutError`` when cut off)."""
        async with asyncio.timeout_at(self._at) as timeout:
            self._active.add(timeout)
            try:
                yield
            finally:
                self._active.discard(timeout)
