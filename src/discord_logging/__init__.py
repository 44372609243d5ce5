"""discord_logging: a stdlib logging handler that turns log records into Discord alerts."""

from __future__ import annotations

__version__ = "0.1.0"
