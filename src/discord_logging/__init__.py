"""discord_logging."""
