"""Exceptions users see. Messages name the setting, the problem and the fix; never a token."""

from __future__ import annotations


class DiscordLoggingError(Exception):
    """Base class of every error this library raises on purpose."""


class ConfigurationError(DiscordLoggingError, ValueError):
    """The configuration cannot work; raised at start-up, never on the logging path."""


class InvalidWebhookURL(ConfigurationError):
    """A webhook URL is malformed or points at a host that is not allowed."""


class TemplateError(ConfigurationError):
    """A user template does not compile or does not render against a sample record."""
