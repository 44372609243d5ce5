"""What a :class:`~discord_logging.DiscordHandler` offers operators from code: mutes the fleet
shares, and resolving an incident (docs/architecture.md, "Mutes, quiet hours and resolving an
incident"). The same as the CLI's ``mute``, ``unmute`` and ``mutes``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .settings import DiscordSettings

if TYPE_CHECKING:
    from .delivery.worker import Worker
    from .muting import Mute


class Controls:
    """Mutes and resolving, for the handler."""

    _settings: DiscordSettings

    def _sending_worker(self) -> Worker:
        raise NotImplementedError

    def mute(self, alert_type: str = "all", duration: float | str = "1h", **options: Any) -> Mute:
        """Mute ``alert_type`` (types separated by commas, or ``all``) for ``duration``
        (seconds, or ``30m``, ``2h``, ``1d``) in every process sharing this store (or Redis),
        within about 2 s. Options: ``reason``, ``match`` (text a record must contain),
        ``all_levels`` (mute CRITICAL too). Raises ValueError on a bad type or duration."""
        from .muting import control as muting

        known = muting.configured_types(self._settings)
        return muting.with_table(
            self._settings,
            lambda table: muting.mute(table, alert_type, duration, known=known, **options),
        )

    def unmute(self, selector: str = "all") -> list[Mute]:
        """End the active mutes ``selector`` names (a mute id, an alert type, or ``all``)."""
        from .muting import control as muting

        return muting.with_table(self._settings, lambda t: muting.unmute(t, selector))

    def resolve(self, fingerprint: str, note: str = "", timeout: float = 10.0) -> bool:
        """End incident ``fingerprint`` (or the ``extra={"fingerprint": ...}`` key) now: its
        message says resolved, by whom and when; its next record opens a new incident. True
        when a message of it was edited."""
        from .delivery.resolution import resolve_through

        return resolve_through(self._sending_worker(), fingerprint, note, timeout)

    def mutes(self) -> list[Mute]:
        """The mutes that hold now in the fleet, the soonest to end first."""
        from .muting import control as muting

        return muting.with_table(self._settings, muting.active_mutes)
