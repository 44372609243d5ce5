"""The plain data that crosses from the caller's thread to delivery, and delivery's answer."""

from __future__ import annotations

import abc
import itertools
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from enum import StrEnum
from typing import Any

_ID_PREFIX = os.urandom(6).hex()
_ID_OFFSET = int.from_bytes(os.urandom(4))
_ID_COUNTER = itertools.count()
# Odd, so multiplying by it permutes the 32-bit numbers: consecutive counters get unrelated
# leading digits, and the first 8 characters of one process's ids never repeat before 2**32.
_ID_SPREAD = 0x9E3779B1


def _reseed_ids() -> None:
    """A forked child must not hand out its parent's ids."""
    global _ID_PREFIX, _ID_OFFSET, _ID_COUNTER
    _ID_PREFIX = os.urandom(6).hex()
    _ID_OFFSET = int.from_bytes(os.urandom(4))
    _ID_COUNTER = itertools.count()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reseed_ids)


def made_here(notification_id: str) -> bool:
    """Whether this process (since its last fork) made ``notification_id``."""
    return notification_id[8:20] == _ID_PREFIX


def own_id_pattern() -> str:
    """A GLOB pattern matching the ids this process (since its last fork) makes."""
    return f"????????{_ID_PREFIX}*"


def new_id() -> str:
    """A unique notification id, 24 hex digits, cheaper than uuid4: the counter spread over the
    first 8 (so an 8-character prefix names one notification, as git's short ids do), a random
    per-process part, then the counter's high bits."""
    count = next(_ID_COUNTER)
    head = (count * _ID_SPREAD + _ID_OFFSET) & 0xFFFFFFFF
    return f"{head:08x}{_ID_PREFIX}{count >> 32:04x}"


@dataclass(frozen=True, slots=True)
class Notification:
    """One alert, snapshotted: only strings, numbers and tuples; no live record, args or traceback.

    ``message`` is the formatted log message; ``exc_text`` the formatted exception, if any.
    ``count`` and ``first_seen`` are set by storm aggregation when repeats were folded in;
    ``samples`` then holds ``(created, message)`` of the first records of those ``count``
    (bounded: the others are only counted, see :attr:`samples_not_kept`).
    ``trace_id`` and ``span_id`` are the OpenTelemetry ids of where it was logged;
    ``trace_url`` the link to that trace (``DISCORD_TRACE_URL_TEMPLATE`` filled in when the
    notification is submitted), for the embed's Trace field and any other link to it. An
    incident's update also says when its latest record came (``last_seen``) and whether it
    still goes on (``ongoing``) or went quiet (``quiet``). ``buttons`` are the record's own
    link buttons (``extra={"buttons": ...}``), as ``(label, url)`` pairs, checked when
    rendered. A ``silent`` notification (a mute's summary) is sent with
    ``SUPPRESS_NOTIFICATIONS`` and pings nobody, whatever ``DISCORD_SILENT`` says.
    """

    alert_type: str
    title: str
    message: str
    level: str = "INFO"
    levelno: int = 20
    logger: str = ""
    created: float = 0.0
    host: str = ""
    process: int | None = None
    process_name: str | None = None
    thread: int | None = None
    thread_name: str | None = None
    pathname: str | None = None
    lineno: int | None = None
    func_name: str | None = None
    extra: tuple[tuple[str, str], ...] = ()
    fields: tuple[tuple[str, str], ...] = ()
    exc_text: str | None = None
    exc_type: str | None = None
    color: int | None = None
    fingerprint: str = ""
    count: int = 1
    first_seen: float | None = None
    samples: tuple[tuple[float, str], ...] = ()
    trace_id: str | None = None
    span_id: str | None = None
    trace_url: str | None = None
    last_seen: float | None = None
    ongoing: bool = False
    quiet: bool = False
    buttons: tuple[tuple[str, str], ...] = ()
    silent: bool = False
    id: str = field(default_factory=new_id)

    @property
    def is_update(self) -> bool:
        """Whether this is an incident's update (a storm summary, a running count, the quiet
        edit) rather than a record shown for the first time."""
        return self.count > 1 or self.ongoing or self.quiet

    @property
    def samples_not_kept(self) -> int:
        """Records of a storm summary that are counted but whose text was not kept."""
        return max(0, self.count - len(self.samples)) if self.samples else 0

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict (tuples become lists)."""
        # Shallow: every field is a string, a number, None or a tuple of pairs of those, and
        # dataclasses.asdict deep-copies each value (the store's writer calls this per letter).
        data = {name: getattr(self, name) for name in _NOTIFICATION_FIELDS}
        data["extra"] = [list(pair) for pair in self.extra]
        data["fields"] = [list(pair) for pair in self.fields]
        data["samples"] = [list(pair) for pair in self.samples]
        data["buttons"] = [list(pair) for pair in self.buttons]
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Notification:
        """Rebuild from :meth:`to_dict` output; unknown keys are ignored (forward compatible)."""
        values = {k: data[k] for k in _NOTIFICATION_FIELDS if k in data}
        for key in ("extra", "fields", "buttons"):
            if key in values:
                values[key] = tuple((str(a), str(b)) for a, b in values[key])
        if "samples" in values:  # absent from dicts stored before storms kept samples
            values["samples"] = tuple((float(t), str(text)) for t, text in values["samples"])
        return cls(**values)

    def with_count(
        self,
        count: int,
        first_seen: float,
        *,
        last_seen: float | None = None,
        ongoing: bool = False,
        quiet: bool = False,
    ) -> Notification:
        """A copy that reports ``count`` occurrences since ``first_seen`` (the latest at
        ``last_seen``; an incident still going on, or quiet since then)."""
        return replace(
            self,
            count=count,
            first_seen=first_seen,
            last_seen=last_seen,
            ongoing=ongoing,
            quiet=quiet,
        )


_NOTIFICATION_FIELDS = tuple(f.name for f in fields(Notification))


class DeliveryStatus(StrEnum):
    """What happened to a notification."""

    DELIVERED = "delivered"
    RETRYING = "retrying"
    RATE_LIMITED = "rate_limited"
    DEAD_LETTERED = "dead_lettered"
    FAILED = "failed"
    MUTED = "muted"  # held by a mute: written to the history, never sent


@dataclass(frozen=True, slots=True)
class NotificationResult:
    """The outcome of sending one notification. ``error`` is Discord's message, never a token."""

    notification_id: str
    status: DeliveryStatus
    webhook_id: str | None = None
    message_id: str | None = None
    attempts: int = 0
    latency: float | None = None
    error: str | None = None
    error_code: int | None = None
    http_status: int | None = None

    @property
    def ok(self) -> bool:
        """True when Discord accepted the notification."""
        return self.status is DeliveryStatus.DELIVERED

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict."""
        data = {name: getattr(self, name) for name in _RESULT_FIELDS}
        data["status"] = self.status.value
        return data


_RESULT_FIELDS = tuple(f.name for f in fields(NotificationResult))


class NotificationChannel(abc.ABC):
    """Somewhere notifications go. Discord webhooks are the implementation; tests may add others."""

    @abc.abstractmethod
    async def send(self, notifications: Sequence[Notification]) -> list[NotificationResult]:
        """Deliver ``notifications``; one result each, in order; delivery errors are results."""

    async def aclose(self) -> None:  # noqa: B027 - optional hook, a no-op by default
        """Release resources."""
