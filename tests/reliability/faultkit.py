"""Shared pieces of the fault matrix: fast timings, a timed logger, the books, polling."""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable, Iterable
from typing import Any, Final

from waiting import FAILSAFE

from discord_logging import DiscordHandler
from discord_logging.testing import FakeDiscord

# Short windows so a fault plays out in a fraction of a second. ``rand`` pins the backoff's
# jitter to its floor: retry n waits 0.5 * 2**(n-1) s.
FAST: Final[dict[str, Any]] = {
    "ban_cooldown": 0.3,
    "probe_interval": 0.3,
    "circuit_reset": 0.3,
    "channel_window": 0.6,
    "retry_deadline": 5,
    "rand": lambda: 0.0,
}
# What a logger call takes when nothing holds it: 50 ms leaves room for GC noise. A call that
# waited on I/O waits a request timeout (0.2 s or more here) or the whole stall, and so does
# every call after it; a busy machine instead deschedules the caller now and then (a call of
# 120 ms was seen beside two busy loops). So the check counts: at most SLOW_CALLS_ALLOWED of
# the calls (at least one) may pass EMIT_BOUND, and none may reach STALL_BOUND.
EMIT_BOUND: Final = 0.05
SLOW_CALLS_ALLOWED: Final = 0.01
STALL_BOUND: Final = 1.0
DEADLINE: Final = FAILSAFE


def fast_fake() -> FakeDiscord:
    """A FakeDiscord whose announced bucket and hidden channel limit reset quickly."""
    return FakeDiscord(webhook_window=0.3, channel_limit=30, channel_window=0.6)


def webhook_id(url: str) -> str:
    """The id part of a webhook URL."""
    return url.split("/")[-2]


def make_handler(
    webhooks: dict[str, str], host: str, engine: dict[str, Any] | None = None, **options: Any
) -> DiscordHandler:
    """A handler with short timings; ``options`` override the defaults below."""
    settings: dict[str, Any] = {
        "aggregate_window": 0,
        "timeout": 1.0,
        "close_timeout": 1.0,
        "retry_attempts": 3,
        **options,
    }
    return DiscordHandler(
        webhooks=webhooks,
        allowed_hosts=host,
        engine_options={**FAST, **(engine or {})},
        **settings,
    )


class TimedLogger:
    """A logger whose every call is timed: ``slow`` lists the calls past EMIT_BOUND, ``calls``
    says how many were made (every one of them must be accounted for in the handler's books)."""

    def __init__(self, handler: DiscordHandler, name: str = "reliability") -> None:
        self.logger = logging.getLogger(name)
        self.logger.addHandler(handler)
        self.logger.setLevel(logging.DEBUG)
        self.logger.propagate = False
        self.calls = 0
        self.slow: list[tuple[int, float]] = []  # (call number, seconds) past EMIT_BOUND

    def _timed(self, log: Callable[..., None], msg: str, args: tuple[object, ...]) -> None:
        started = time.perf_counter()
        log(msg, *args)
        took = time.perf_counter() - started
        if took >= EMIT_BOUND:
            self.slow.append((self.calls, took))
        self.calls += 1

    def error(self, msg: str, *args: object) -> None:
        """``logger.error``, timed."""
        self._timed(self.logger.error, msg, args)

    def info(self, msg: str, *args: object) -> None:
        """``logger.info``, timed."""
        self._timed(self.logger.info, msg, args)

    def assert_never_blocked(self) -> None:
        """No call waited on I/O: few calls past EMIT_BOUND (the first one, which starts the
        worker thread, included), none near a stall."""
        shown = ", ".join(f"#{n}: {took * 1000:.1f} ms" for n, took in self.slow[:10])
        allowed = max(1, int(self.calls * SLOW_CALLS_ALLOWED))
        assert len(self.slow) <= allowed, f"{len(self.slow)} of {self.calls} calls slow: {shown}"
        assert all(took < STALL_BOUND for _, took in self.slow), f"a call waited: {shown}"


def assert_books_balance(
    stats: dict[str, Any],
    calls: int,
    dropped_ok: Iterable[str] = (),
) -> None:
    """Every logger call is emitted (or dropped for an expected reason), and every emitted
    record was delivered, folded into an aggregate, or dead-lettered (a dead letter that is
    redelivered later counts as "redelivered", not again as "delivered")."""
    summary = {
        k: stats[k]
        for k in ("emitted", "delivered", "aggregated", "dead_lettered", "redelivered", "dropped")
    }
    unexpected = {r: n for r, n in stats["dropped"].items() if r not in set(dropped_ok)}
    assert not unexpected, f"dropped for unexpected reasons: {summary}"
    assert stats["emitted"] + sum(stats["dropped"].values()) == calls, summary
    settled = stats["delivered"] + stats["aggregated"] + stats["dead_lettered"]
    assert settled == stats["emitted"], summary
    assert stats["queue_depth"] == 0, summary


def wait_until(condition: Callable[[], bool], timeout: float = DEADLINE) -> None:
    """Poll ``condition`` with small sleeps until it holds; fail at the deadline."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(0.005)


def warm_up(log: TimedLogger, fake: FakeDiscord) -> None:
    """One record delivered first: the worker and its HTTP client are up (~0.2 s)."""
    before = len(fake.messages)
    log.error("warm-up")
    wait_until(lambda: len(fake.messages) > before)


def message_text(fake: FakeDiscord) -> str:
    """Everything the fake accepted (embeds and attached files) as one searchable text."""
    parts = []
    for message in fake.messages:
        parts.append(json.dumps(message.payload, ensure_ascii=False))
        parts.extend(data.decode("utf-8", "replace") for _, data in message.files.values())
    return "\n".join(parts)


def marked(text: str, pattern: str = r"rec#(\d+)#") -> set[int]:
    """The record numbers marked ``rec#<n>#`` in ``text``."""
    return {int(n) for n in re.findall(pattern, text)}


def requests_after(fake: FakeDiscord, wid: str, status: int) -> tuple[float | None, list[float]]:
    """The time of the first answer ``status`` to webhook ``wid``, and the times of every
    request to that webhook after it."""
    mine = [r for r in fake.requests if r.webhook_id == wid]
    first = next((r.time for r in mine if r.status == status), None)
    if first is None:
        return None, []
    return first, [r.time for r in mine if r.time > first]
