"""What a shared backend (one host's store, Redis) does when it cannot answer.

Each process then keeps to a conservative share of the limits (``limit // fleet_size``, the
``DISCORD_FLEET_SIZE`` setting) from an in-process :class:`~.local.LocalCoordinator`, counts
it, says so once on stderr and tries the backend again every ``retry_interval`` seconds.
Nothing is lost and nothing raises: a slot comes from the local share, a hold or a pause is
obeyed locally, a dead-letter claim is refused (the letter stays stored for later).
"""

from __future__ import annotations

import abc
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from typing import Final, TextIO, TypeVar

from ..transport.headers import RateLimitHeaders
from ..wording import counted, write_line
from . import Coordinator, Grant, IncidentChange, IncidentsUnavailable
from .ledger import Limits
from .local import LocalCoordinator

T = TypeVar("T")

RETRY_INTERVAL: Final = 5.0


class SharedCoordinator(Coordinator):
    """A coordinator whose states live outside the process, with the local share as fallback."""

    unreachable: tuple[type[BaseException], ...] = (OSError, TimeoutError)
    """Errors meaning "the backend cannot answer now"; anything else is a bug and propagates."""

    def __init__(
        self,
        limits: Limits,
        clock: Callable[[], float],
        *,
        fleet_size: int,
        retry_interval: float = RETRY_INTERVAL,
        stderr: TextIO | None = None,
    ) -> None:
        super().__init__(limits, clock)
        self.fleet_size = max(1, fleet_size)
        self.retry_interval = retry_interval
        self.fallback = LocalCoordinator(limits.share(self.fleet_size), clock=clock)
        self._stderr = stderr
        self._told = False
        self._down_until: float | None = None

    @property
    @abc.abstractmethod
    def where(self) -> str:
        """The backend, for messages (no password)."""

    # -- reachability ------------------------------------------------------------------------

    @property
    def reachable(self) -> bool:
        """False while this process keeps to its local share."""
        return self._down_until is None

    def _due(self) -> bool:
        return self._down_until is None or self.clock() >= self._down_until

    def _down(self, error: BaseException) -> None:
        self.stats.backend_errors += 1
        if self._down_until is None:
            self.stats.fallbacks += 1
        self._down_until = self.clock() + self.retry_interval
        if not self._told:
            self._told = True
            share = self.fallback.limits
            # A refused store directory: the store's own line gives the fix.
            why = getattr(error, "problem", None) or f"{type(error).__name__}: {error}"
            write_line(
                f"discord-logging: {self.where} cannot be used ({why}); this process keeps "
                f"to {counted(share.channel_limit, 'message')} per "
                f"{share.channel_window:g} s per channel (DISCORD_RATE_LIMIT // "
                f"DISCORD_FLEET_SIZE={self.fleet_size}) until it answers again. Said once.",
                self._stderr,
            )

    async def _shared(self, operation: Callable[[], Awaitable[T]], otherwise: T) -> T:
        """Run ``operation`` on the backend; while it is away, count and return ``otherwise``."""
        if not self._due():
            return otherwise
        try:
            result = await operation()
        except self.unreachable as error:
            self._down(error)
            return otherwise
        self._down_until = None
        return result

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
        got: Grant | float | None = await self._shared(
            lambda: super(SharedCoordinator, self).acquire(
                channel, webhook, bucket=bucket, reserve=reserve, backlog=backlog
            ),
            None,
        )
        if got is not None:
            return got
        got = await self.fallback.acquire(
            channel, webhook, bucket=bucket, reserve=reserve, backlog=backlog
        )
        if isinstance(got, Grant):
            self.stats.fallback_grants += 1
            return replace(got, local=True)
        return got

    async def plain_room(self, channel: str, webhook: str) -> int:
        found: int | None = await self._shared(
            lambda: super(SharedCoordinator, self).plain_room(channel, webhook), None
        )
        return found if found is not None else await self.fallback.plain_room(channel, webhook)

    async def complete(self, grant: Grant, headers: RateLimitHeaders | None) -> None:
        if grant.local:
            await self.fallback.complete(grant, headers)
        else:
            # If the backend went away meanwhile, the stamp stays at send time and expires.
            await self._shared(
                lambda: super(SharedCoordinator, self).complete(grant, headers), None
            )

    async def give_back(self, grant: Grant) -> None:
        if grant.local:
            await self.fallback.give_back(grant)
        else:
            await self._shared(lambda: super(SharedCoordinator, self).give_back(grant), None)

    async def block_webhook(self, webhook: str, seconds: float) -> None:
        await self.fallback.block_webhook(webhook, seconds)  # the local share obeys it too
        await self._shared(
            lambda: super(SharedCoordinator, self).block_webhook(webhook, seconds), None
        )

    async def pause_all(self, seconds: float) -> None:
        await self.fallback.pause_all(seconds)
        await self._shared(lambda: super(SharedCoordinator, self).pause_all(seconds), None)

    shares_incidents = True

    async def incidents(
        self,
        changes: Sequence[tuple[str, IncidentChange[T]]],
    ) -> list[T]:
        return await self._incidents(lambda: super(SharedCoordinator, self).incidents(changes))

    async def peek_incidents(
        self,
        looks: Sequence[tuple[str, IncidentChange[T]]],
    ) -> list[T]:
        return await self._incidents(lambda: super(SharedCoordinator, self).peek_incidents(looks))

    async def _incidents(self, operation: Callable[[], Awaitable[T]]) -> T:
        if not self._due():
            raise IncidentsUnavailable(self.where)
        try:
            result = await operation()
        except self.unreachable as error:
            self._down(error)
            raise IncidentsUnavailable(self.where) from error
        self._down_until = None
        return result

    async def merge_window(self, stand_in: str, channel: str) -> None:
        await self.fallback.merge_window(stand_in, channel)
        await self._shared(
            lambda: super(SharedCoordinator, self).merge_window(stand_in, channel), None
        )
