"""Internal errors: counted, and said once per kind on stderr, never a traceback per record."""

from __future__ import annotations

from ..redaction import redact
from ..stats import DeliveryStats
from ..transport.outcome import ERROR_TEXT_LIMIT
from ..wording import write_line


class BugReporter:
    """Counts the library's own exceptions in delivery and describes each (token redacted)."""

    def __init__(self, stats: DeliveryStats) -> None:
        self.stats = stats
        self.reported: set[str] = set()  # exception kinds already said on stderr

    def report(self, exc: Exception, lane: str) -> str:
        """Count ``exc`` and describe it; one stderr line per exception kind."""
        self.stats.add("internal_errors")
        kind = type(exc).__name__
        text = redact(f"{kind}: {exc}")[:ERROR_TEXT_LIMIT]
        if kind not in self.reported:
            self.reported.add(kind)
            write_line(
                f"discord-logging: internal error in lane {lane!r} ({text}); what it held is "
                "kept as dead letters (reason internal_error) and delivery goes on. "
                "This is a bug: please report it with this line.",
            )
        return text
