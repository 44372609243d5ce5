"""Link buttons (pure): up to 5 per alert type (DISCORD_BUTTONS, templated from the record)
and per record (``extra={"buttons": ...}``), laid out as Discord's action rows.

Plain webhooks may send non-interactive components only: link buttons (type 2, style 5) with
a ``label`` of at most 80 characters and a ``url`` (at most 512), at most 5 per action row
(type 1), at most 5 rows, and only with ``?with_components=true`` (discord-api.md,
"Components on plain webhooks"). A button whose rendered URL is not ``https://`` or too long
is left out and counted: a bad link never stops the alert.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

from jinja2 import Template
from jinja2.sandbox import SandboxedEnvironment

from ..config.alert_options import BUTTONS_MAX, LinkButton, check_button
from ..errors import ConfigurationError

ACTION_ROW: Final = 1
BUTTON: Final = 2
LINK_STYLE: Final = 5
ROWS_MAX: Final = 5  # action rows per message
Button = tuple[str, str]  # (label, url)


class ButtonTemplates:
    """The DISCORD_BUTTONS of each alert type, compiled once in the renderer's sandbox."""

    def __init__(
        self, env: SandboxedEnvironment, buttons: Mapping[str, Sequence[LinkButton]]
    ) -> None:
        self._compiled: dict[str, list[tuple[Template, Template]]] = {}
        for alert_type, items in buttons.items():
            try:
                self._compiled[alert_type] = [
                    (env.from_string(b.label), env.from_string(b.url)) for b in items
                ]
            except Exception as exc:  # noqa: BLE001 - a syntax error names the setting
                raise ConfigurationError(
                    f"DISCORD_BUTTONS: {alert_type}: {type(exc).__name__}: {exc}; fix the "
                    "button's template (the variables of docs/templates.md)"
                ) from None

    @property
    def alert_types(self) -> list[str]:
        """The alert types that have buttons of their own."""
        return list(self._compiled)

    def wanted(self, alert_type: str) -> bool:
        """Whether ``alert_type`` has buttons of its own (its context must be built)."""
        return alert_type in self._compiled

    def render(self, alert_type: str, context: Mapping[str, Any]) -> tuple[list[Button], int]:
        """The type's buttons for one record, and how many were left out (a template that
        failed, or rendered to a label or URL Discord would refuse)."""
        shown: list[Button] = []
        dropped = 0
        for label, url in self._compiled.get(alert_type, ()):
            try:
                button = check_button(label.render(context), url.render(context), alert_type)
            except Exception:  # noqa: BLE001 - a bad link never stops the alert
                dropped += 1
                continue
            shown.append((button.label, button.url))
        return shown, dropped

    def validate(self, alert_type: str, context: Mapping[str, Any]) -> None:
        """Render the type's buttons against a sample record; raise ConfigurationError naming
        DISCORD_BUTTONS when one fails or renders to a link Discord refuses."""
        for label, url in self._compiled.get(alert_type, ()):
            try:
                check_button(label.render(context), url.render(context), alert_type)
            except Exception as exc:  # noqa: BLE001 - any failure is a configuration error
                raise ConfigurationError(
                    f"DISCORD_BUTTONS: {alert_type}: {type(exc).__name__}: {exc}; a button "
                    "needs a label of 1-80 characters and an https:// URL (templates may use "
                    "the variables of docs/templates.md)"
                ) from None


def record_buttons(pairs: Iterable[Button]) -> tuple[list[Button], int]:
    """A record's own buttons that Discord would show, and how many were left out."""
    shown: list[Button] = []
    dropped = 0
    for label, url in pairs:
        try:
            button = check_button(label, url, "extra buttons")
        except ValueError:
            dropped += 1
            continue
        shown.append((button.label, button.url))
    return shown, dropped


def first_buttons(*groups: Iterable[Button]) -> tuple[tuple[Button, ...], int]:
    """The first ``BUTTONS_MAX`` distinct buttons of ``groups``, and how many did not fit."""
    seen: dict[Button, None] = {}
    over = 0
    for group in groups:
        for button in group:
            if button in seen:
                continue
            if len(seen) == BUTTONS_MAX:
                over += 1
                continue
            seen[button] = None
    return tuple(seen), over


def action_rows(per_record: Sequence[Sequence[Button]]) -> list[dict[str, Any]]:
    """The components of one message carrying these records' buttons: the distinct buttons,
    in order, 5 to a row, at most 5 rows. When records of one message share a label with
    different links, each label says which embed it belongs to (``Trace #2``)."""
    urls_by_label: dict[str, set[str]] = {}
    for buttons in per_record:
        for label, url in buttons:
            urls_by_label.setdefault(label, set()).add(url)
    seen: dict[Button, None] = {}
    for position, buttons in enumerate(per_record, start=1):
        for label, url in buttons:
            shown = label
            if len(urls_by_label[label]) > 1:
                shown = f"{label[: 80 - len(f' #{position}')]} #{position}"
            seen.setdefault((shown, url), None)
    items = list(seen)[: ROWS_MAX * BUTTONS_MAX]
    return [
        {
            "type": ACTION_ROW,
            "components": [
                {"type": BUTTON, "style": LINK_STYLE, "label": label, "url": url}
                for label, url in items[start : start + BUTTONS_MAX]
            ],
        }
        for start in range(0, len(items), BUTTONS_MAX)
    ]
