"""The shared limits as pure state transitions, the same for every backend.

A backend loads the few states one request touches (the pause, the global window, the
channel's window, the webhook's bucket), applies one of :func:`acquire`, :func:`complete` or
:func:`give_back` with ``now``, and stores them back, all in one atomic step (a lock, an SQLite
``BEGIN IMMEDIATE`` transaction, a Redis ``WATCH``/``MULTI``). The arithmetic lives here once,
so the property tests of this module cover every backend.

The channel and global limits are sliding windows (at most ``limit`` stamps in any
``window`` seconds), and a slot is stamped when it is taken and restamped when its response
arrives (Discord counted the request somewhere in between: the later time is the safe one).
The webhook's announced bucket follows its ``X-RateLimit-*`` headers
(:mod:`discord_logging.transport.headers`), plus what one process never needed: requests other
processes have in flight. ``tests/rate_oracle.py`` keeps the one-process reference models the
tests compare this arithmetic with.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Final

from ..transport.headers import RateLimitHeaders
from .incidents import IncidentState

# A stamp or hold further ahead than this is not ours: a clock that jumped or a store written
# by another boot. It is dropped rather than obeyed (a ban cools off in minutes, not hours).
MAX_HOLD: Final = 3600.0
# How long to wait before asking again when only other processes' in-flight requests hold the
# bucket: their answers will tell how much is left.
IN_FLIGHT_POLL: Final = 0.05
# How long a holder's word on its backlog counts (WindowState.wants). A lane says it with every
# request it asks for, waiting or not (a waiting lane asks at least every couple of seconds
# while only the webhook's bucket holds it back), so this only forgets holders that are done.
DEMAND_TTL: Final = 10.0


@dataclass(frozen=True, slots=True)
class Limits:
    """The limits shared by every process of a fleet."""

    channel_limit: int = 30
    channel_window: float = 60.0
    global_limit: int = 50
    global_window: float = 1.1  # Discord's 1 s plus a margin for jitter (see notifier.py)
    in_flight_ttl: float = 60.0
    """A slot never completed (its process died) stops holding the bucket after this long;
    its window stamp stays, since the request may have reached Discord."""

    def __post_init__(self) -> None:
        if min(self.channel_limit, self.global_limit) < 1:
            raise ValueError("a shared limit needs at least 1 request per window")
        if min(self.channel_window, self.global_window, self.in_flight_ttl) <= 0:
            raise ValueError("a shared window must be longer than 0 s")

    def share(self, fleet_size: int) -> Limits:
        """This process's conservative share when the fleet cannot coordinate."""
        size = max(1, fleet_size)
        return Limits(
            channel_limit=max(1, self.channel_limit // size),
            channel_window=self.channel_window,
            global_limit=max(1, self.global_limit // size),
            global_window=self.global_window,
            in_flight_ttl=self.in_flight_ttl,
        )


@dataclass(slots=True)
class WindowState:
    """Stamps of the slots taken in one sliding window, by slot id; for a channel's window,
    also what each holder said it still has to send there (``wants``: holder -> messages,
    said at; see :func:`declare`)."""

    stamps: dict[str, float] = field(default_factory=dict)
    wants: dict[str, tuple[int, float]] = field(default_factory=dict)

    def expire(self, window: float, now: float) -> None:
        """Forget stamps older than ``window`` (and stamps from a clock that jumped back)."""
        self.stamps = {
            slot: stamp
            for slot, stamp in self.stamps.items()
            if now - window < stamp <= now + MAX_HOLD
        }

    def delay(self, limit: int, window: float, now: float) -> float:
        """Seconds until one more slot fits (0.0 now)."""
        self.expire(window, now)
        if len(self.stamps) < limit:
            return 0.0
        # The (len - limit + 1)-th oldest stamp must leave before one more fits.
        ordered = sorted(self.stamps.values())
        return max(0.0, ordered[len(ordered) - limit] + window - now)

    def to_json(self) -> dict[str, Any]:
        if not self.wants:
            return {"s": self.stamps}
        return {"s": self.stamps, "w": {k: list(v) for k, v in self.wants.items()}}

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> WindowState:
        if not data:
            return cls()
        stamps = {str(k): float(v) for k, v in dict(data.get("s", {})).items()}
        wants = {str(k): (int(v[0]), float(v[1])) for k, v in dict(data.get("w", {})).items()}
        return cls(stamps, wants)


@dataclass(slots=True)
class BucketState:
    """One webhook's announced bucket, as the fleet knows it.

    ``remaining`` and ``reset_at`` come from the last ``X-RateLimit-*`` headers; requests in
    flight (``in_flight``, slot -> time taken) are counted against ``remaining`` until their
    answers arrive. Before any header is known, one request at a time goes (it brings the
    headers back), so N processes starting together do not spend N requests blind.
    """

    remaining: int | None = None
    limit: int | None = None
    reset_at: float = 0.0
    blocked_until: float = 0.0
    in_flight: dict[str, float] = field(default_factory=dict)

    def _allowance(self, now: float) -> int:
        if self.remaining is not None and now < self.reset_at:
            return self.remaining
        if self.remaining is not None and self.limit is not None:
            return self.limit  # the window reset: the whole allowance is back
        return 1  # nothing known (or a limit never announced): probe one at a time

    def delay(self, now: float, ttl: float) -> float:
        """Seconds until one more request may go."""
        self.in_flight = {s: t for s, t in self.in_flight.items() if now - ttl < t <= now + ttl}
        blocked = self.blocked_until - now
        if blocked > MAX_HOLD:
            self.blocked_until, blocked = 0.0, 0.0
        if self._allowance(now) - len(self.in_flight) > 0:
            return max(0.0, blocked)
        if self.remaining == 0 and now < self.reset_at <= now + MAX_HOLD:
            return max(blocked, self.reset_at - now)
        # Only requests in flight hold the bucket: look again when their answers may be in.
        return max(blocked, IN_FLIGHT_POLL)

    def update(self, headers: RateLimitHeaders, now: float) -> None:
        """Take in the headers of an answer received at ``now``."""
        if headers.limit is not None:
            self.limit = headers.limit
        if headers.remaining is None:
            return
        if headers.reset_after is None:
            self.remaining = headers.remaining
            return
        if self.remaining is not None and now < self.reset_at:
            # Same window: answers can arrive out of order; the lowest count is the latest.
            self.remaining = min(self.remaining, headers.remaining)
            self.reset_at = max(self.reset_at, now + headers.reset_after)
        else:
            self.remaining = headers.remaining
            self.reset_at = now + headers.reset_after

    def to_json(self) -> dict[str, Any]:
        return {
            "r": self.remaining,
            "l": self.limit,
            "z": self.reset_at,
            "b": self.blocked_until,
            "f": self.in_flight,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> BucketState:
        if not data:
            return cls()
        remaining, limit = data.get("r"), data.get("l")
        return cls(
            remaining=None if remaining is None else int(remaining),
            limit=None if limit is None else int(limit),
            reset_at=float(data.get("z", 0.0)),
            blocked_until=float(data.get("b", 0.0)),
            in_flight={str(k): float(v) for k, v in dict(data.get("f", {})).items()},
        )


@dataclass(slots=True)
class PauseState:
    """Every lane of every process holds back until ``until`` (a global 429, a Cloudflare ban)."""

    until: float = 0.0

    def delay(self, now: float) -> float:
        left = self.until - now
        if left > MAX_HOLD:
            self.until, left = 0.0, 0.0
        return max(0.0, left)

    def to_json(self) -> dict[str, Any]:
        return {"u": self.until}

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> PauseState:
        return cls(float(data.get("u", 0.0))) if data else cls()


@dataclass(slots=True)
class SlotState:
    """Everything one request reads and writes."""

    pause: PauseState
    global_window: WindowState
    channel: WindowState
    bucket: BucketState
    stand_in: WindowState | None = None
    """The webhook's own window (its stand-in key) once its channel is known: still checked
    and stamped, so a process that has not learned the channel yet (and counts under the
    stand-in) sees the slots of those that have."""


@dataclass(slots=True)
class RouteState:
    """The channel a webhook posts into, once any process of the fleet learned it (its
    window key), so a process that has not asked Discord yet counts in that window too."""

    channel: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"c": self.channel}

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> RouteState:
        channel = data.get("c") if data else None
        return cls(channel if isinstance(channel, str) else None)


PAUSE_KEY: Final = "pause"
GLOBAL_KEY: Final = "window:global"


def state_keys(channel: str, webhook: str, bucket: str | None = None) -> tuple[str, ...]:
    """Store keys of the states a request on ``webhook`` into ``channel`` touches, in
    :class:`SlotState` order (the webhook's stand-in window last, when ``channel`` is not it).
    ``bucket`` names a route's own bucket (a webhook's message edits); default the webhook's."""
    keys: tuple[str, ...] = (
        PAUSE_KEY,
        GLOBAL_KEY,
        f"window:{channel}",
        f"bucket:{bucket or webhook}",
    )
    stand_in = f"window:webhook:{webhook}"
    return keys if keys[2] == stand_in else (*keys, stand_in)


def route_key(stand_in: str) -> str | None:
    """The key of the route learned for a webhook whose channel ``stand_in`` is its own id
    (``webhook:<id>``, see :class:`~.channels.ChannelDirectory`); None for a channel key."""
    return f"route:{stand_in[len('webhook:') :]}" if stand_in.startswith("webhook:") else None


State = PauseState | WindowState | BucketState | RouteState | IncidentState
INCIDENT_PREFIX: Final = "incident:"  # one incident's shared state (:mod:`.incidents`)


def empty_state(key: str) -> State:
    """A fresh state of the kind stored under ``key``."""
    if key == PAUSE_KEY:
        return PauseState()
    if key.startswith("bucket:"):
        return BucketState()
    if key.startswith("route:"):
        return RouteState()
    if key.startswith(INCIDENT_PREFIX):
        return IncidentState()
    return WindowState()


def from_json(key: str, data: dict[str, Any] | None) -> State:
    """The state stored under ``key`` as JSON (None when absent)."""
    if key == PAUSE_KEY:
        return PauseState.from_json(data)
    if key.startswith("bucket:"):
        return BucketState.from_json(data)
    if key.startswith("route:"):
        return RouteState.from_json(data)
    if key.startswith(INCIDENT_PREFIX):
        return IncidentState.from_json(data)
    return WindowState.from_json(data)


def decode(key: str, text: str | bytes | None) -> State:
    """The state stored under ``key`` as JSON text; a row that is not ours (corrupt, planted,
    from another version) counts as empty rather than stopping delivery."""
    if not text:
        return empty_state(key)
    try:
        data = json.loads(text)
        return from_json(key, data if isinstance(data, dict) else None)
    except (ValueError, TypeError, AttributeError, LookupError):
        return empty_state(key)


def encode(state: State) -> str:
    """The JSON text stored for ``state``."""
    return json.dumps(state.to_json(), separators=(",", ":"))


def slot_state(states: list[State]) -> SlotState:
    """The states of :func:`state_keys`, in order, as one :class:`SlotState`."""
    pause, global_window, channel, bucket, *rest = states
    assert isinstance(pause, PauseState)
    assert isinstance(global_window, WindowState)
    assert isinstance(channel, WindowState)
    assert isinstance(bucket, BucketState)
    stand_in = rest[0] if rest else None
    assert stand_in is None or isinstance(stand_in, WindowState)
    return SlotState(pause, global_window, channel, bucket, stand_in)


def _windows(state: SlotState) -> list[WindowState]:
    return [state.global_window, state.channel, *([state.stand_in] if state.stand_in else [])]


def acquire(state: SlotState, limits: Limits, slot: str, now: float, reserve: int = 0) -> float:
    """Take ``slot`` if every limit allows it now (returns 0.0, ``state`` changed), else return
    the seconds to wait (``state`` holds no new slot). With ``reserve``, the channel's window
    must keep that many places free after this slot (for requests that matter more)."""
    channel_limit = max(1, limits.channel_limit - reserve)
    wait = max(
        state.pause.delay(now),
        state.global_window.delay(limits.global_limit, limits.global_window, now),
        state.channel.delay(channel_limit, limits.channel_window, now),
        state.bucket.delay(now, limits.in_flight_ttl),
        state.stand_in.delay(channel_limit, limits.channel_window, now) if state.stand_in else 0.0,
    )
    if wait > 0:
        return wait
    for window in _windows(state):
        window.stamps[slot] = now
    state.bucket.in_flight[slot] = now
    return 0.0


def complete(state: SlotState, slot: str, headers: RateLimitHeaders | None, now: float) -> None:
    """The answer to ``slot`` arrived at ``now``: restamp it, release the bucket, read headers."""
    for window in _windows(state):
        # A stamp that expired while its request was in flight comes back: Discord counted it.
        window.stamps[slot] = max(window.stamps.get(slot, now), now)
    state.bucket.in_flight.pop(slot, None)
    if headers is not None:
        state.bucket.update(headers, now)


def give_back(state: SlotState, slot: str) -> None:
    """``slot``'s request never reached Discord: it counts nowhere."""
    for window in _windows(state):
        window.stamps.pop(slot, None)
    state.bucket.in_flight.pop(slot, None)


def declare(window: WindowState, holder: str, messages: int, now: float) -> None:
    """``holder`` (a sender's lane: ``<sender><webhook>``) has ``messages`` more to send into
    ``window``'s channel, said at ``now`` (0: nothing). Holders' words older than
    :data:`DEMAND_TTL` are forgotten here too."""
    window.wants = {
        who: said
        for who, said in window.wants.items()
        if now - DEMAND_TTL < said[1] <= now + MAX_HOLD
    }
    if messages > 0:
        window.wants[holder] = (messages, now)
    else:
        window.wants.pop(holder, None)


def wanted_by_others(window: WindowState, holder: str, now: float) -> int:
    """Messages the other holders of ``window``'s channel said they still have to send
    (within :data:`DEMAND_TTL`)."""
    return sum(
        messages
        for who, (messages, said) in window.wants.items()
        if who != holder and now - DEMAND_TTL < said <= now + MAX_HOLD
    )


def block(bucket: BucketState, seconds: float, now: float) -> None:
    """A per-webhook 429: the webhook holds back for ``retry_after``."""
    bucket.blocked_until = max(bucket.blocked_until, now + min(seconds, MAX_HOLD))


def pause(state: PauseState, seconds: float, now: float) -> None:
    """A global 429 or a ban: everyone holds back."""
    state.until = max(state.until, now + min(seconds, MAX_HOLD))
