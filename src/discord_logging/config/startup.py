"""What the handler checks on the caller's thread when it is created, beyond the settings
themselves: the user's template files (they compile, and render against a sample record), and
``DISCORD_*`` variables that no setting reads (a typo would silently send nothing)."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Final

from ..wording import write_line

if TYPE_CHECKING:
    from ..settings import DiscordSettings

_SAID: set[str] = set()  # unknown-variable lines said in this process
_SAID_LOCK: Final = threading.Lock()


def check_user_templates(settings: DiscordSettings, label: str = "DISCORD_TEMPLATES_DIR") -> None:
    """With ``templates_dir`` or link buttons set: every template (and button) compiles and
    renders against a sample record, else :class:`~discord_logging.errors.TemplateError` (a
    ConfigurationError) naming the file and line. Jinja2 is imported only then: the built-in
    templates are checked by the test suite, so a handler without templates or buttons of its
    own imports nothing heavy here."""
    if settings.templates_dir is None and not settings.buttons:
        return
    from ..errors import TemplateError
    from ..render.templating import EmbedRenderer

    try:
        renderer = EmbedRenderer(
            app_name=settings.app_name,
            templates_dir=settings.templates_dir,
            attach_full_text=settings.attach_full_text,
            buttons=settings.buttons,
        )
        renderer.validate([*settings.webhooks, *settings.routes.values(), *settings.mentions])
    except TemplateError as exc:  # named as the user gave the directory (``label``)
        text = str(exc).replace("DISCORD_TEMPLATES_DIR ", "", 1)
        raise TemplateError(f"invalid configuration:\n  {label}: {text}") from None


def say_unknown_variables(settings: DiscordSettings) -> None:
    """One stderr line per ``DISCORD_*`` variable no setting reads (in the environment or
    ``.env``), with what ``discord-logging check`` suggests; each once per process."""
    from .variables import configured_variables, ignored_patterns, variable_problems

    try:
        names = configured_variables()
        # As check does: a custom type's webhook is meant when a route or mention names it.
        intended = [*settings.routes.values(), *settings.mentions]
        problems = variable_problems(names, intended, ignored_patterns())
    except (OSError, ValueError):  # an unreadable .env: the settings said what they could
        return
    with _SAID_LOCK:
        fresh = [p for p in problems if p not in _SAID]
        _SAID.update(fresh)
    for problem in fresh:
        write_line(f"discord-logging: {problem}")
