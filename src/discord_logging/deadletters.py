"""Dead letters: notifications that could not be delivered, kept with the reason, never dropped.

Those kept for a retryable reason are redelivered automatically once their webhook is healthy;
the rest wait for an operator. The in-memory sink lives here; the durable one is in ``store``.
"""

from __future__ import annotations

import abc
import concurrent.futures
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Final, Protocol, TypeVar

from .notification import Notification
from .wording import write_line


class DeadLetterReason(StrEnum):
    """Why a notification was not delivered."""

    RETRIES_EXHAUSTED = "retries_exhausted"  # outage: 5xx, timeouts, connection errors
    CIRCUIT_OPEN = "circuit_open"
    RATE_LIMITED = "rate_limited"  # still rate limited or banned when time ran out
    QUEUE_OVERFLOW = "queue_overflow"
    SHUTDOWN = "shutdown"  # not delivered by the close deadline
    POISON = "poison"  # Discord answered 400: the payload itself is refused
    WEBHOOK_DISABLED = "webhook_disabled"  # 401/403/404: the webhook is gone or the token wrong
    INTERNAL_ERROR = "internal_error"  # the library itself failed on it (a bug): for an operator
    UNCERTAIN = "uncertain"  # cut off in flight at the close deadline: Discord may have it
    PROCESS_ENDED = "process_ended"  # its process died first: taken from its journal


RETRYABLE_REASONS: Final = frozenset(
    {
        DeadLetterReason.RETRIES_EXHAUSTED,
        DeadLetterReason.CIRCUIT_OPEN,
        DeadLetterReason.RATE_LIMITED,
        DeadLetterReason.QUEUE_OVERFLOW,
        DeadLetterReason.SHUTDOWN,
        DeadLetterReason.UNCERTAIN,  # redelivered with a note that it may repeat a message
        DeadLetterReason.PROCESS_ENDED,
    }
)


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A notification that was not delivered, with why and where it was going: ``webhook`` is
    the alert-type name (for people), ``destination`` the webhook identity
    (:attr:`~discord_logging.transport.webhook_url.WebhookURL.identity`) it may be posted to.
    A letter without a destination (kept by a version before identities) is held for the
    operator: its webhook is never guessed."""

    notification: Notification
    webhook: str
    reason: DeadLetterReason
    attempts: int = 0
    error: str | None = None
    error_code: int | None = None
    http_status: int | None = None
    dead_at: float = field(default_factory=time.time)
    destination: str | None = None

    @property
    def id(self) -> str:
        """The notification's id: one dead letter per notification."""
        return self.notification.id

    @property
    def retryable(self) -> bool:
        """Whether it is redelivered automatically once its webhook is healthy: a retryable
        reason, and a known destination."""
        return self.reason in RETRYABLE_REASONS and self.destination is not None

    @property
    def folder(self) -> str:
        """What the letter is kept under: its destination, or for a letter kept before
        destinations existed, its alert-type name (nothing reads those for redelivery)."""
        return self.destination if self.destination is not None else self.webhook

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form."""
        return {
            "notification": self.notification.to_dict(),
            "webhook": self.webhook,
            "reason": self.reason.value,
            "attempts": self.attempts,
            "error": self.error,
            "error_code": self.error_code,
            "http_status": self.http_status,
            "dead_at": self.dead_at,
            "destination": self.destination,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DeadLetter:
        """Rebuild from :meth:`to_dict` output."""
        return cls(
            notification=Notification.from_dict(data["notification"]),
            webhook=str(data["webhook"]),
            reason=DeadLetterReason(data["reason"]),
            attempts=int(data.get("attempts", 0)),
            error=data.get("error"),
            error_code=data.get("error_code"),
            http_status=data.get("http_status"),
            dead_at=float(data.get("dead_at", 0.0)),
            destination=str(data["destination"]) if data.get("destination") else None,
        )


_T = TypeVar("_T")


class StoreCalls(Protocol):
    """The thread a sink's reads run on (the store's one thread): calls handed to it run
    there one at a time, in order; a fork parks it between two of them."""

    def submit(self, fn: Callable[..., _T], *args: Any) -> concurrent.futures.Future[_T]: ...

    def park(self, timeout: float) -> Callable[[], None]: ...


class DeadLetterSink(abc.ABC):
    """Where undeliverable notifications go. Implementations must be thread-safe and must not
    raise into delivery: a failing sink counts and keeps what it can."""

    #: Whether letters survive the process (``flush`` counts them as kept only then).
    durable: bool = False

    @abc.abstractmethod
    def add(self, letter: DeadLetter) -> None:
        """Keep ``letter``, replacing an earlier one for the same notification."""

    @abc.abstractmethod
    def retryable(self, destination: str, limit: int) -> list[DeadLetter]:
        """Up to ``limit`` retryable letters for ``destination`` (a webhook identity), oldest
        first (not removed)."""

    @abc.abstractmethod
    def remove(self, letter_id: str) -> None:
        """Forget a letter (it was delivered, or an operator purged it)."""

    @abc.abstractmethod
    def letters(self) -> list[DeadLetter]:
        """Every letter kept, oldest first."""

    def sync(self) -> None:  # noqa: B027 - optional hook
        """Write anything buffered to durable storage (no-op for sinks that do not buffer)."""

    def store_thread(self) -> StoreCalls | None:
        """The thread its reads should run on, off the event loop; None: they run inline."""
        return None

    def release_thread(self) -> None:  # noqa: B027 - optional hook
        """Close the calling thread's connections, if the sink keeps any (before the thread
        ends: Python 3.13 warns about connections left to the garbage collector)."""

    def scan_cut_short(self, webhook: str) -> bool:
        """Whether the last :meth:`retryable` look for ``webhook`` stopped at its scan budget
        (passing over letters others hold) with more keys behind: a short answer then does
        not mean nothing more is waiting. False for sinks that read everything."""
        return False

    def kept_ids(self, letter_ids: Collection[str]) -> set[str]:
        """Which of ``letter_ids`` are still kept (not delivered, not purged)."""
        wanted = set(letter_ids)
        return {x.id for x in self.letters() if x.id in wanted}

    def renew(self, letter_ids: Sequence[str]) -> None:  # noqa: B027 - optional hook
        """Extend this process's redelivery claims on ``letter_ids`` (letters it still holds
        queued), so no other process takes them over meanwhile. No-op for unshared sinks."""

    def confirm(self, letter_ids: Sequence[str]) -> set[str]:
        """Renew those claims now and return the ids whose claims this holder lost (another
        holder took them over): they must not be posted (fencing). Unshared sinks lose none."""
        return set()

    def __len__(self) -> int:
        return len(self.letters())


class MemoryDeadLetters(DeadLetterSink):
    """Dead letters in memory, bounded: past ``capacity`` the oldest are evicted, counted
    (``evicted``, and ``on_evict`` for each) and said once on stderr: they are lost."""

    DEFAULT_CAPACITY: Final = 100_000

    def __init__(
        self,
        capacity: int = DEFAULT_CAPACITY,
        *,
        on_evict: Callable[[DeadLetter], None] | None = None,
    ) -> None:
        self.capacity = capacity
        self.evicted = 0
        self._on_evict = on_evict
        self._letters: OrderedDict[str, DeadLetter] = OrderedDict()
        self._lock = threading.Lock()

    def add(self, letter: DeadLetter) -> None:
        with self._lock:
            self._letters.pop(letter.id, None)
            self._letters[letter.id] = letter
            while len(self._letters) > self.capacity:
                _, gone = self._letters.popitem(last=False)
                self.evicted += 1
                if self.evicted == 1:
                    write_line(
                        f"discord-logging: more than {self.capacity:,} dead letters in memory: "
                        "the oldest are dropped from now on and are lost (stats: "
                        "dead_letters_evicted). Give the handler a store that works "
                        "(DISCORD_STORE_PATH).",
                    )
                if self._on_evict is not None:
                    self._on_evict(gone)

    def retryable(self, destination: str, limit: int) -> list[DeadLetter]:
        with self._lock:
            found = []
            for letter in self._letters.values():
                if letter.destination == destination and letter.retryable:
                    found.append(letter)
                    if len(found) >= limit:
                        break
            return found

    def remove(self, letter_id: str) -> None:
        with self._lock:
            self._letters.pop(letter_id, None)

    def kept_ids(self, letter_ids: Collection[str]) -> set[str]:
        with self._lock:
            return {i for i in letter_ids if i in self._letters}

    def letters(self) -> list[DeadLetter]:
        with self._lock:
            return list(self._letters.values())

    def __len__(self) -> int:
        return len(self._letters)
