"""Stage 4, coordination: Discord's limits shared by every process of a fleet.

Runs on the worker's event loop (the host backend's SQLite calls included: they are short).

Discord counts per webhook, per channel and per IP, never per process. A :class:`Coordinator`
hands out request slots so that all the processes that share one together stay inside:

- the hidden per-channel window (``DISCORD_RATE_LIMIT`` messages in any 60 s; webhooks in one
  channel share it, a thread is a channel of its own; see
  :mod:`discord_logging.transport.channels` for the keys),
- each webhook's announced bucket (``X-RateLimit-Remaining``/``Reset-After``, 429 holds),
- the global 50 requests/s and the pauses every lane obeys (a global 429, a Cloudflare ban),
- (dead-letter claims are the store's: one claim system, see docs/architecture.md).

One module per backend, so the listing tells where limits live:

=================  ==============================================  ==========================
module             shares with                                     chosen by
=================  ==============================================  ==========================
:mod:`.local`      the lanes of this process (today's behaviour)   the default
:mod:`.host`       every process using the same store directory    ``DISCORD_STORE_PATH``
:mod:`.redis`      every process of every host on one Redis        ``DISCORD_REDIS_URL``
=================  ==============================================  ==========================

The arithmetic is in :mod:`.ledger` (pure, takes ``now``); a backend only makes one change to
the few states a request touches atomically (:meth:`Coordinator._transact`). The protocol of
a sender (a lane)::

    got = await coordinator.acquire(channel_key, webhook_id)
    if not isinstance(got, Grant):
        await nap(got)                      # seconds until a slot may be free; ask again then
    else:
        answer = await send()
        if answer never reached Discord:    # connection refused, Cloudflare ban page
            await coordinator.give_back(got)
        else:
            await coordinator.complete(got, answer.headers)   # restamped at response time

No method raises into the caller: a shared backend that fails is counted in
:attr:`Coordinator.stats` and falls back to a conservative local share (:mod:`.shared_coordinator`).
"""

from __future__ import annotations

import abc
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from ..errors import ConfigurationError
from ..transport.headers import RateLimitHeaders
from . import ledger
from .incidents import IncidentState
from .ledger import Limits, State

__all__ = [
    "CoordinationStats",
    "Coordinator",
    "Grant",
    "IncidentsUnavailable",
    "Limits",
    "open_coordinator",
]

T = TypeVar("T")
# What a step does to (or decides on) an incident's shared state: ``change(state, now, gone)``,
# ``gone(sender)`` telling whether that holder is known to be gone.
IncidentChange = Callable[[IncidentState, float, Callable[[str], bool]], T]


@dataclass(frozen=True, slots=True)
class Grant:
    """One request slot, taken. Hand it back to :meth:`Coordinator.complete` or
    :meth:`Coordinator.give_back` exactly once."""

    slot: str
    channel: str
    webhook: str
    local: bool = False
    """Taken from the local fallback share (Redis was unreachable), not from the fleet's."""
    bucket: str | None = None
    """The route's own bucket when not the webhook's (its message edits)."""


@dataclass(slots=True)
class CoordinationStats:
    """Counters of a coordinator (read by ``handler.stats()`` once wired)."""

    backend_errors: int = 0
    """Operations the shared backend failed (each one served locally or skipped)."""
    fallbacks: int = 0
    """Times this process switched to its local share because the backend was unreachable."""
    fallback_grants: int = 0
    """Slots granted from the local share."""


class IncidentsUnavailable(Exception):
    """The shared backend cannot answer now: the caller keeps its incident to itself."""


def new_slot_id() -> str:
    """A slot id unique across processes and hosts."""
    return os.urandom(8).hex()


_PROCESS = [os.urandom(4).hex()]  # this process's token in slot ids


def _new_process_token() -> None:
    _PROCESS[0] = os.urandom(4).hex()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_new_process_token)


class Coordinator(abc.ABC):
    """Hands out request slots within limits shared by a fleet. Safe on one asyncio loop."""

    backend: str = ""

    def __init__(self, limits: Limits, clock: Callable[[], float]) -> None:
        self.limits = limits
        self.clock = clock
        self.stats = CoordinationStats()
        self._routes: dict[str, str] = {}  # stand-in -> channel key, learned through the backend
        self._nonce = new_slot_id()[:8]  # with the process's token, names this holder's slots

    @property
    def sender(self) -> str:
        """The prefix of this holder's slot ids: its process's random token, drawn again in a
        forked child (another sender even with an inherited coordinator), and a random part
        (two handlers of one process). Never a pid: every container's app is pid 1. A slot is
        a lease unless the backend can tell its holder is gone (docs/architecture.md,
        "Holders: who is alive")."""
        return f"{self._holder_token()}.{self._nonce}."

    def _holder_token(self) -> str:
        """The part of :attr:`sender` that names this process (a backend may name a holder
        it can probe instead)."""
        return _PROCESS[0]

    # -- what a backend provides -------------------------------------------------------------

    @abc.abstractmethod
    async def _transact(
        self, keys: tuple[str, ...], change: Callable[[list[State], float], T]
    ) -> T:
        """Load the states under ``keys``, apply ``change(states, now)`` and store them, as one
        atomic step with respect to every other process of the backend. May raise on I/O."""

    # -- limits ------------------------------------------------------------------------------

    async def acquire(
        self,
        channel: str,
        webhook: str,
        *,
        bucket: str | None = None,
        reserve: int = 0,
        backlog: int | None = None,
    ) -> Grant | float:
        """Take a slot for one request of ``webhook`` into ``channel`` (a key from
        :class:`~.channels.ChannelDirectory`), or return the seconds to wait before asking again.
        While ``channel`` is the webhook's stand-in, the channel another process learned for
        it (:meth:`merge_window`) is read in the same step and counted in instead. ``bucket``
        names the route's own bucket (a webhook's message edits: ``<webhook id>:messages``);
        ``reserve`` keeps that many places of the channel's window free after this slot.
        ``backlog``, when given, is how many messages the asking lane still has to send there,
        this one included: said in the same step, granted or not, so that every holder
        planning plain messages counts it (:meth:`plain_room`)."""
        channel = self._routes.get(channel, channel)
        slot = self.sender + new_slot_id()
        keys = ledger.state_keys(channel, webhook, bucket)
        route = ledger.route_key(channel)
        if route is not None:
            keys = (*keys, route)

        def take(states: list[State], now: float) -> float | str:
            learned = states[-1] if route is not None else None
            if isinstance(learned, ledger.RouteState) and learned.channel is not None:
                return learned.channel  # nothing taken: ask again in that channel's window
            # Without the route, if one was read: a learned channel's states end with the
            # webhook's stand-in window, which still holds slots taken before the channel was
            # known and completed after (restamped there only), so it must count too.
            slot_states = states[:-1] if route is not None else states
            state = ledger.slot_state(slot_states)
            if backlog is not None:
                ledger.declare(state.channel, holder, backlog, now)
            return ledger.acquire(state, self.limits, slot, now, reserve)

        holder = self.sender + webhook
        got = await self._transact(keys, take)
        if isinstance(got, str):
            self._routes[channel] = got
            return await Coordinator.acquire(
                self, got, webhook, bucket=bucket, reserve=reserve, backlog=backlog
            )
        return got if got > 0 else Grant(slot, channel, webhook, bucket=bucket)

    async def plain_room(self, channel: str, webhook: str) -> int:
        """How many more plain messages ``webhook``'s lane may plan in ``channel``'s window
        now: the window's free places less what every other holder said it still has to send
        there (:meth:`acquire`'s ``backlog``; this process's other lanes included), and at
        most an equal share of them between this holder and each other holder with a slot in
        the window (whatever those send next is not known yet).

        The window is shared by every process posting there: a holder that spends it one
        embed per record (a digest carries up to 58) leaves the others' records waiting for
        the window to reopen, a minute later (fleet.py's fork-4-store: 31 messages, the last
        at 60 s, while holders could not tell each other what they had; the first to get a
        slot planned the whole window before the others got one). A small backlog beside
        everyone else's still goes plain."""
        channel = self._routes.get(channel, channel)
        limits, mine = self.limits, self.sender

        def free(states: list[State], now: float) -> int:
            (window,) = states
            assert isinstance(window, ledger.WindowState)
            window.expire(limits.channel_window, now)
            places = max(0, limits.channel_limit - len(window.stamps))
            others = {_sender_of(slot) for slot in window.stamps if not slot.startswith(mine)}
            said = ledger.wanted_by_others(window, mine + webhook, now)
            return min(places // (len(others) + 1), max(0, places - said))

        return await self._transact((f"window:{channel}",), free)

    async def complete(self, grant: Grant, headers: RateLimitHeaders | None) -> None:
        """The answer to ``grant``'s request arrived now: restamp its slot at this time and take
        in the webhook's ``X-RateLimit-*`` headers (None when the answer had none)."""

        def done(states: list[State], now: float) -> None:
            ledger.complete(ledger.slot_state(states), grant.slot, headers, now)

        await self._transact(ledger.state_keys(grant.channel, grant.webhook, grant.bucket), done)

    async def give_back(self, grant: Grant) -> None:
        """``grant``'s request never reached Discord (refused connection, Cloudflare's page):
        its slot counts nowhere."""

        def undo(states: list[State], now: float) -> None:
            ledger.give_back(ledger.slot_state(states), grant.slot)

        await self._transact(ledger.state_keys(grant.channel, grant.webhook, grant.bucket), undo)

    async def block_webhook(self, webhook: str, seconds: float) -> None:
        """A per-webhook 429: no process sends to ``webhook`` (or, given a route's own bucket
        name, on that route) for ``seconds``."""

        def hold(states: list[State], now: float) -> None:
            (bucket,) = states
            assert isinstance(bucket, ledger.BucketState)
            ledger.block(bucket, seconds, now)

        await self._transact((f"bucket:{webhook}",), hold)

    async def pause_all(self, seconds: float) -> None:
        """A global 429 or a Cloudflare ban: no process sends anything for ``seconds``."""

        def hold(states: list[State], now: float) -> None:
            (pause,) = states
            assert isinstance(pause, ledger.PauseState)
            ledger.pause(pause, seconds, now)

        await self._transact((ledger.PAUSE_KEY,), hold)

    async def merge_window(self, stand_in: str, channel: str) -> None:
        """A webhook's channel became known: the slots counted under its ``stand_in`` key (the
        webhook id) count in ``channel``'s window too, so learning it never widens the window."""

        route = ledger.route_key(stand_in)

        def merge(states: list[State], now: float) -> None:
            old, new, *learned = states
            assert isinstance(old, ledger.WindowState)
            assert isinstance(new, ledger.WindowState)
            new.stamps.update(old.stamps)  # slot ids are unique: nothing is counted twice
            new.wants.update(old.wants)
            for state in learned:  # every process now counts the webhook in ``channel``
                assert isinstance(state, ledger.RouteState)
                state.channel = channel

        keys = (f"window:{stand_in}", f"window:{channel}", *([route] if route else []))
        await self._transact(keys, merge)

    # -- incidents shared by the fleet (docs/architecture.md) -------------------------------

    shares_incidents: bool = False
    """Whether other processes see this coordinator's incidents (a shared backend)."""

    incident_batch: int = 1
    """Incidents one :meth:`incidents` transaction may change (a backend that can do many)."""

    async def incident(self, key: str, change: IncidentChange[T]) -> T:
        """Apply ``change(state, now, gone)`` to incident ``key``'s shared state in one atomic
        step; ``gone(sender)`` tells whether the holder of that sender id is known to be gone.
        Raises :class:`IncidentsUnavailable` when the backend cannot answer."""
        (result,) = await self.incidents([(key, change)])
        return result

    async def incidents(
        self,
        changes: Sequence[tuple[str, IncidentChange[T]]],
    ) -> list[T]:
        """:meth:`incident` for each ``(key, change)``, in order, up to :attr:`incident_batch`
        distinct keys to a transaction; each change sees its state as if alone."""
        results: list[T] = []
        group: list[tuple[str, IncidentChange[T]]] = []
        keys: set[str] = set()
        for key, change in changes:
            if len(group) >= self.incident_batch or key in keys:  # a key once a transaction
                results.extend(await self._incident_group(group))
                group, keys = [], set()
            group.append((key, change))
            keys.add(key)
        if group:
            results.extend(await self._incident_group(group))
        return results

    async def peek_incidents(
        self,
        looks: Sequence[tuple[str, IncidentChange[T]]],
    ) -> list[T]:
        """``decide(state, now, gone)`` on each incident ``key``'s state as it is now, all on one
        read, written nowhere: a decision that changes nothing needs no transaction (a backend
        reads without taking a lock where it can). Raises as :meth:`incident` does."""
        keys = tuple(f"{ledger.INCIDENT_PREFIX}{key}" for key, _ in looks)
        states, now = await self._read(keys)
        out = []
        for state, (_, decide) in zip(states, looks, strict=True):
            assert isinstance(state, IncidentState)
            out.append(decide(state, now, self.holder_gone))
        return out

    async def _read(self, keys: tuple[str, ...]) -> tuple[list[State], float]:
        """The states under ``keys`` and the backend's time (here: a transaction that
        changes nothing, which backends write nothing for)."""
        return await self._transact(keys, lambda states, now: (states, now))

    async def _incident_group(
        self,
        group: Sequence[tuple[str, IncidentChange[T]]],
    ) -> list[T]:
        def step(states: list[State], now: float) -> list[T]:
            out = []
            for state, (_, change) in zip(states, group, strict=True):
                assert isinstance(state, IncidentState)
                out.append(change(state, now, self.holder_gone))
                state.mark_until()
            return out

        keys = tuple(f"{ledger.INCIDENT_PREFIX}{key}" for key, _ in group)
        return await self._transact(keys, step)

    def holder_gone(self, sender: str) -> bool:
        """Whether the holder that sends as ``sender`` is known to be gone (False: alive, or
        no lock can tell; then only its lease says)."""
        return False

    async def aclose(self) -> None:  # noqa: B027 - most backends hold nothing to close
        """Release connections and files; idempotent."""


def open_coordinator(
    limits: Limits,
    *,
    store_dir: Path | None = None,
    redis_url: str | None = None,
    fleet_size: int = 4,
    clock: Callable[[], float] | None = None,
) -> Coordinator:
    """The coordinator for the settings: Redis when ``redis_url``, else the store directory's
    host-wide one, else this process only. Imports a backend only when it is chosen."""
    if redis_url:
        from .redis import RedisCoordinator

        return RedisCoordinator(redis_url, limits, fleet_size=fleet_size)
    if store_dir is not None:
        from .host import HostCoordinator

        return HostCoordinator(store_dir, limits, fleet_size=fleet_size, clock=clock or time.time)
    from .local import LocalCoordinator

    return LocalCoordinator(limits, clock=clock or time.monotonic)


def require_redis_client(redis_url: object) -> None:
    """With ``DISCORD_REDIS_URL`` set, redis-py must be installed: say how, at start-up."""
    if redis_url is None:
        return
    import importlib.util

    if importlib.util.find_spec("redis") is None:
        raise ConfigurationError(
            "DISCORD_REDIS_URL is set but redis-py is not installed. Fix: install the redis "
            'extra of this library (pip install "discord-alert-logging[redis]"), or unset '
            "DISCORD_REDIS_URL to share limits only through the store directory"
        )


def _sender_of(slot: str) -> str:
    """The holder that took ``slot`` (its id's ``<token>.<nonce>.`` prefix; a slot of an older
    version, without one, counts as a holder of its own)."""
    pid, _, rest = slot.partition(".")
    nonce, dot, _ = rest.partition(".")
    return f"{pid}.{nonce}." if dot else slot
