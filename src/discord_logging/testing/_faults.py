"""Injected faults: answers forced onto the next N matching requests, and the controls that
set them (a mixin of :class:`~discord_logging.testing._server.FakeDiscord`)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final, Literal

from discord_logging.testing._http import Outgoing

EXECUTE: Final = "execute"  # Execute Webhook (POST)
MESSAGES: Final = "messages"  # a webhook's message: GET, PATCH, DELETE
Silence = Literal["no_answer", "stall_body"]
SILENCES: Final = ("no_answer", "stall_body")
# What a request stalled after the headers is told is coming (and never comes).
_STALLED_BODY: Final = b'{"id": "0"}'
HUGE_PIECE: Final = 64 * 1024  # a huge answer is written this much at a time


@dataclass
class Fault:
    """An injected answer for the next ``remaining`` matching requests."""

    remaining: int
    webhook_id: str | None
    status: int = 503
    retry_after: float = 0.0
    route: str = EXECUTE
    size: int | None = 0  # a huge answer's body size in bytes; None: it never ends


def take(faults: list[Fault], webhook_id: str, route: str = EXECUTE) -> Fault | None:
    """Consume one use of the first fault matching ``webhook_id`` (None matches every webhook)
    and ``route``."""
    for fault in faults:
        if fault.route == route and fault.webhook_id in (None, webhook_id):
            fault.remaining -= 1
            if fault.remaining <= 0:
                faults.remove(fault)
            return fault
    return None


class FaultControls:
    """What a test can make the fake do wrong."""

    _lock: threading.Lock
    _cond: threading.Condition
    _fail: list[Fault]
    _lost: list[Fault]
    _forced_429: list[Fault]
    _forced_global_429: list[Fault]
    _huge: list[Fault]
    _overrides: dict[str, int]
    _latency: float
    _hang: bool
    _silence: Silence | None
    _stopping: bool
    _buffer: int
    _ban: float | None
    huge_bytes_written: int

    def fail_next(
        self,
        n: int,
        status: int = 503,
        webhook_id: str | int | None = None,
        *,
        route: str = EXECUTE,
    ) -> None:
        """Answer the next ``n`` execute requests (of one webhook or any) with ``status``;
        ``route="messages"``: the next ``n`` requests on a webhook's messages (edits).

        Injected answers carry ``Via`` (they come from Discord, not Cloudflare) and do not use
        up any rate limit.
        """
        self._add_fault(self._fail, Fault(n, self._wid(webhook_id), status=status, route=route))

    def lose_answers(
        self, n: int, status: int | None = 504, webhook_id: str | int | None = None
    ) -> None:
        """The next ``n`` execute requests create their message, then the answer is lost: a
        gateway's ``status`` (502, 504, 524) comes back instead of Discord's, or, with
        ``status=None``, the connection closes with no answer at all."""
        self._add_fault(self._lost, Fault(n, self._wid(webhook_id), status=status or 0))

    def force_429(
        self,
        n: int,
        retry_after: float = 0.1,
        webhook_id: str | int | None = None,
        *,
        route: str = EXECUTE,
    ) -> None:
        """Answer the next ``n`` execute requests (or, with ``route="messages"``, requests on
        a webhook's messages) with a per-route 429 (scope ``user``)."""
        fault = Fault(n, self._wid(webhook_id), retry_after=retry_after, route=route)
        self._add_fault(self._forced_429, fault)

    def force_global_429(self, n: int, retry_after: float = 0.1, *, route: str = EXECUTE) -> None:
        """Answer the next ``n`` execute requests (or, with ``route="messages"``, requests on
        a webhook's messages) with a global 429 (``global: true``)."""
        fault = Fault(n, None, retry_after=retry_after, route=route)
        self._add_fault(self._forced_global_429, fault)

    def answer_huge(
        self,
        n: int,
        status: int = 500,
        size: int | None = 64 * 1024 * 1024,
        webhook_id: str | int | None = None,
    ) -> None:
        """Answer the next ``n`` execute requests (of one webhook or any) with ``status`` and a
        body of ``size`` bytes (a JSON object that never closes), or, with ``size=None``, one
        that never ends: written until the client hangs up or ``stop()``. Nothing is posted.
        A host that answers with far more than anyone asked for (issue 32);
        ``huge_bytes_written`` says how much went out."""
        self._add_fault(self._huge, Fault(n, self._wid(webhook_id), status=status, size=size))

    def _huge_answer(self, fault: Fault) -> Outgoing:
        """The answer of an :meth:`answer_huge` fault: headers, then its body piece by piece."""
        start = b'{"id": "1", "pad": "' if 200 <= fault.status < 300 else b'{"message": "'
        size = fault.size

        def pieces() -> Iterator[bytes]:
            left = None if size is None else max(0, size - len(start))
            filler = b"x" * HUGE_PIECE
            piece = start
            while not self._stopping:
                yield piece
                self._count_huge(len(piece))
                if left is not None and left <= 0:
                    return
                piece = filler if left is None else filler[: min(left, HUGE_PIECE)]
                if left is not None:
                    left -= len(piece)

        headers = [("Content-Type", "application/json"), ("Via", "1.1 google")]
        length = None if size is None else max(size, len(start))
        return Outgoing(fault.status, headers, pieces=pieces(), length=length)

    def _count_huge(self, sent: int) -> None:
        with self._lock:
            self.huge_bytes_written += sent

    def set_latency(self, seconds: float) -> None:
        """Delay every answer by ``seconds`` of real time (0 turns it off)."""
        with self._lock:
            self._latency = max(0.0, seconds)

    def set_hang(self, on: bool) -> None:
        """While on, requests wait unanswered; off answers them; ``stop()`` drops them."""
        with self._cond:
            self._hang = on
            self._cond.notify_all()

    def set_silent(self, silence: Silence | None) -> None:
        """A host that takes the connection and then hangs: while set, each request is read
        whole and never acted on, and ``"no_answer"`` sends nothing back, ``"stall_body"`` the
        status line and headers of a 200 and then none of its body. None ends it: the held
        requests are dropped with their connections, never acted on (so is ``stop()``)."""
        if silence is not None and silence not in SILENCES:
            raise ValueError(f"silence must be one of {SILENCES} or None, got {silence!r}")
        with self._cond:
            self._silence = silence
            self._cond.notify_all()

    def _silenced(self) -> Outgoing | None:
        """Called first for each request: None to go on; else what to do (an answer of
        status 0: drop the connection), after holding it for as long as the silence lasts."""
        silence = self._silence
        if silence is None:
            return None
        if silence == "stall_body":
            headers = [("Content-Type", "application/json")]
            return Outgoing(200, headers, _STALLED_BODY, stall=self._hold_while_silent)
        self._hold_while_silent()
        return Outgoing(0)

    def _wait_for_faults(self) -> bool:
        """Apply hang and latency; False when ``stop()`` released the request instead."""
        with self._cond:
            self._buffer += 1
            try:
                while self._hang and not self._stopping:
                    self._cond.wait()
                deadline = time.monotonic() + self._latency
                while not self._stopping and (left := deadline - time.monotonic()) > 0:
                    self._cond.wait(left)
                return not self._stopping
            finally:
                self._buffer -= 1

    def _hold_while_silent(self) -> None:
        with self._cond:
            self._buffer += 1
            try:
                while self._silence is not None and not self._stopping:
                    self._cond.wait()
            finally:
                self._buffer -= 1

    def set_ban(self, on: bool, *, retry_after: int = 60) -> None:
        """Simulate a Cloudflare IP ban: every request gets 429 WITHOUT ``Via``, HTML body."""
        with self._lock:
            self._ban = float(retry_after) if on else None

    def set_status_override(self, webhook_id: str | int, status: int | None) -> None:
        """Answer every execute request of a webhook with ``status`` (e.g. 403); None clears."""
        with self._lock:
            if status is None:
                self._overrides.pop(str(webhook_id), None)
            else:
                self._overrides[str(webhook_id)] = status

    def _add_fault(self, faults: list[Fault], fault: Fault) -> None:
        if fault.remaining > 0:
            with self._lock:
                faults.append(fault)

    @staticmethod
    def _wid(webhook_id: str | int | None) -> str | None:
        return None if webhook_id is None else str(webhook_id)
