"""Mutes and quiet hours: windows during which records of an alert type are kept from Discord
(written to the history as ``muted``), and the one silent summary sent when a window ends.

- ``rules``: a :class:`Mute`, whether it holds a record, and what one held (pure, takes ``now``)
- ``quiet``: ``DISCORD_QUIET_HOURS`` rules and the window that holds ``now`` (pure)
- ``table``: where the fleet shares its mutes: the store directory (SQLite) or Redis
- ``gate``: the worker's side, on the worker thread: re-reads the mutes every ``REFRESH``
  seconds, holds what they mute, adds its tallies, and sends the summaries

The caller's thread does nothing for mutes. See docs/architecture.md, "Mutes, quiet hours and
resolving an incident".
"""

from .rules import ALL, Mute, Tally, parse_duration, parse_scope

__all__ = ["ALL", "Mute", "Tally", "parse_duration", "parse_scope"]
