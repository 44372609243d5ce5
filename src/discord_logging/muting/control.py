"""Setting and ending mutes, for ``handler.mute()`` / ``unmute()`` and the CLI (the caller's
thread: each call opens the shared table, changes it, and closes it)."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, TypeVar

from .rules import Mute, misspelt, parse_duration, parse_scope
from .table import MuteTable, open_table, unmute_targets

T = TypeVar("T")

if TYPE_CHECKING:
    from ..settings import DiscordSettings
    from ..stats import DeliveryStats
    from .gate import MuteGate


def settings_table(settings: DiscordSettings) -> MuteTable:
    """The table every process with these settings shares (store directory, or Redis)."""
    from ..store._paths import store_directory

    redis = settings.redis_url.get_secret_value() if settings.redis_url else None
    return open_table(store_directory(settings.store_path), redis)


def table_opener(settings: DiscordSettings) -> Callable[[], MuteTable]:
    return lambda: settings_table(settings)


def gate_for(settings: DiscordSettings, stats: DeliveryStats) -> MuteGate:
    """The gate a handler's worker honours mutes through."""
    from .gate import MuteGate

    return MuteGate(table_opener(settings), stats=stats, quiet=settings.quiet_hours)


def new_mute(
    scope: str,
    duration: float | str,
    *,
    reason: str = "",
    match: str = "",
    all_levels: bool = False,
    now: float | None = None,
    known: Iterable[str] = (),
) -> Mute:
    """A mute starting ``now``; ValueError naming what is wrong (the scope, the duration).
    ``known``: the alert types configured besides the built-in ones (a near miss of one is
    refused as a typo)."""
    seconds = parse_duration(str(duration)) if isinstance(duration, str) else float(duration)
    if isinstance(duration, int | float):
        parse_duration(f"{seconds}s")  # the same bounds
    start = time.time() if now is None else now
    by = f"{socket.gethostname()} (pid {os.getpid()})"
    scoped = parse_scope(scope)
    if typo := misspelt(scoped, known):
        raise ValueError(f"{typo}: name an alert type, several separated by commas, or all")
    return Mute(
        f"m{os.urandom(4).hex()}", scoped, start, start + seconds,
        reason.strip(), match.strip(), all_levels, by,
    )  # fmt: skip


def configured_types(settings: DiscordSettings) -> set[str]:
    """The alert types ``settings`` name besides the built-in ones: its webhooks' and the
    types its routes lead to."""
    return set(settings.webhooks) | set(settings.routes.values())


def mute(table: MuteTable, scope: str, duration: float | str, **options: Any) -> Mute:
    """Set a new mute in ``table`` and return it."""
    made = new_mute(scope, duration, **options)
    table.add(made)
    return made


def unmute(table: MuteTable, selector: str, now: float | None = None) -> list[Mute]:
    """End the active mutes ``selector`` names (an id or its prefix, a type, or ``all``)."""
    when = time.time() if now is None else now
    key = selector.strip().lower()
    kept = table.mutes()
    ended = unmute_targets(kept, key, when)
    if not ended and "," not in key:
        try:  # an alias of a type (errors -> error)
            ended = unmute_targets(kept, parse_scope(key), when)
        except ValueError:
            ended = []
    for found in ended:
        table.end(found.id, when)
    return ended


def active_mutes(table: MuteTable, now: float | None = None) -> list[Mute]:
    """The mutes that hold now, the soonest to end first."""
    when = time.time() if now is None else now
    return sorted((m for m, _ in table.mutes() if m.active(when)), key=lambda m: m.end)


def with_table(settings: DiscordSettings, use: Callable[[MuteTable], T]) -> T:
    table = settings_table(settings)
    try:
        return use(table)
    finally:
        table.close()
