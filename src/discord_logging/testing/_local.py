"""FakeDiscord for other processes (``discord-logging fake-discord``): stable webhook URLs on
a chosen port, faults planned from the command line, every message it accepts written to a
JSON-lines file, and a read-only listing at ``/fake/messages`` (JSON) and ``/fake`` (a page).
"""

from __future__ import annotations

import html
import json
import re
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, Final

from discord_logging.alerts import AlertType
from discord_logging.testing._http import Incoming, Outgoing
from discord_logging.testing._models import ReceivedMessage
from discord_logging.testing._server import FakeDiscord
from discord_logging.wording import counted

# The webhooks' alert types, in the order --webhooks N takes them.
ALERT_TYPES: Final = tuple(
    t.value
    for t in (
        AlertType.GENERAL,
        AlertType.ERROR,
        AlertType.CRITICAL,
        AlertType.MONITORING,
        AlertType.SECURITY,
        AlertType.TRACKLIST,
    )
)
# Stable ids and tokens: the same --port gives the same URLs on every run, so a CI file or a
# docker-compose.yml can hold them. They open nothing but this fake.
_FIRST_ID: Final = 100_000_000_000_000_001
LISTING: Final = "/fake/messages"
PAGE: Final = "/fake"
_FAIL: Final = re.compile(r"(?P<status>\d{3}):(?P<amount>\d+(?:\.\d+)?)(?P<unit>[sm]?)")


@dataclass(frozen=True)
class FailPlan:
    """``--fail STATUS:30s`` (an outage of that long) or ``STATUS:N`` (the next N posts)."""

    status: int
    seconds: float | None = None
    count: int | None = None


def parse_fail(text: str) -> FailPlan:
    """``503:30s``, ``500:2m`` or ``502:3``; ValueError saying the accepted forms."""
    match = _FAIL.fullmatch(text.strip())
    forms = (
        "STATUS:DURATION (503:30s, 502:2m: every post fails that long from the start) "
        "or STATUS:COUNT (500:3: the next 3 posts)"
    )
    if match is None:
        raise ValueError(f"{text!r} is not {forms}")
    status = int(match["status"])
    if not 400 <= status <= 599:
        raise ValueError(f"{text!r}: the status must be 400-599, got {status}")
    amount = float(match["amount"])
    if match["unit"]:
        if status == 429:
            raise ValueError(f"{text!r}: a 429 is given as a count (429:5), not a duration")
        return FailPlan(status, seconds=amount * (60 if match["unit"] == "m" else 1))
    if not amount.is_integer():
        raise ValueError(f"{text!r}: a count is a whole number; a duration ends in s or m")
    return FailPlan(status, count=int(amount))


class LocalFakeDiscord(FakeDiscord):
    """A :class:`FakeDiscord` on ``port`` with ``webhooks`` webhooks named by alert type
    (general, error, critical, ...), forum channels' when ``forum``, recording to ``record``."""

    def __init__(
        self,
        *,
        port: int = 0,
        webhooks: int = 1,
        forum: bool = False,
        record: Path | None = None,
        **limits: Any,
    ) -> None:
        if not 1 <= webhooks <= len(ALERT_TYPES):
            raise ValueError(f"webhooks must be 1-{len(ALERT_TYPES)}, got {webhooks}")
        super().__init__(port=port, **limits)
        self._names = ALERT_TYPES[:webhooks]
        self._forum = forum
        self._record_path = record
        self._record_file: IO[str] | None = None
        self._record_lock = threading.Lock()
        self._written = 0
        self._timers: list[threading.Timer] = []
        self._started_wall = time.time()
        self._started_clock = self._clock()

    def start(self) -> LocalFakeDiscord:
        """Serve, then register the webhooks and open the record file (appended to)."""
        super().start()
        for n, name in enumerate(self._names):
            wid = str(_FIRST_ID + n)
            self.add_webhook(wid, f"fake-{name}-token", forum=self._forum)
        if self._record_path is not None:
            self._record_file = self._record_path.open("a", encoding="utf-8")
        return self

    def stop(self) -> None:
        """Stop serving, end planned outages, write what is left and close the record."""
        super().stop()
        for timer in self._timers:
            timer.cancel()
        self._write_new()
        with self._record_lock:
            if self._record_file is not None:
                self._record_file.close()
                self._record_file = None

    def environment(self) -> list[str]:
        """``DISCORD_WEBHOOK_<TYPE>=url`` lines and ``DISCORD_ALLOWED_HOSTS``, ready to use."""
        lines = [
            f"DISCORD_WEBHOOK_{name.upper()}={self.webhook_url(_FIRST_ID + n)}"
            for n, name in enumerate(self._names)
        ]
        return [*lines, f"DISCORD_ALLOWED_HOSTS={self.host}"]

    def plan(self, plans: list[FailPlan]) -> None:
        """Counts apply to the next posts; outages follow each other from now, in order."""
        outages = [p for p in plans if p.seconds is not None]
        for plan in plans:
            if plan.count is not None:
                if plan.status == 429:
                    self.force_429(plan.count, retry_after=1.0)
                else:
                    self.fail_next(plan.count, plan.status)
        self._next_outage(outages)

    def _next_outage(self, outages: list[FailPlan]) -> None:
        ids = [str(_FIRST_ID + n) for n in range(len(self._names))]
        status = outages[0].status if outages else None
        for wid in ids:
            self.set_status_override(wid, status)
        if outages:
            seconds = outages[0].seconds or 0.0
            timer = threading.Timer(seconds, self._next_outage, args=(outages[1:],))
            timer.daemon = True
            self._timers.append(timer)
            timer.start()

    # -- what it received ---------------------------------------------------------------------

    def listing(self) -> list[dict[str, Any]]:
        """Every accepted message as plain data (what ``/fake/messages`` serves)."""
        return [self._entry(m) for m in self.messages]

    def _entry(self, message: ReceivedMessage) -> dict[str, Any]:
        wall = self._started_wall + (message.received_at - self._started_clock)
        index = int(message.webhook_id) - _FIRST_ID
        embeds = message.embeds
        return {
            "received": datetime.fromtimestamp(wall, UTC).isoformat(timespec="milliseconds"),
            "webhook": self._names[index] if 0 <= index < len(self._names) else None,
            "webhook_id": message.webhook_id,
            "message_id": message.message_id,
            "channel_id": message.channel_id,
            "thread_id": message.thread_id,
            "title": embeds[0].get("title") if embeds else message.post_title or message.content,
            "files": [name for name, _ in message.files.values()],
            "payload": message.payload,
        }

    def _write_new(self) -> None:
        with self._record_lock:
            if self._record_file is None:
                return
            fresh = self.messages[self._written :]
            for message in fresh:
                self._record_file.write(json.dumps(self._entry(message)) + "\n")
            self._written += len(fresh)
            self._record_file.flush()

    def _handle(self, request: Incoming) -> Outgoing | None:
        path = request.target.split("?", 1)[0]
        if request.method == "GET" and path in (LISTING, PAGE):
            return self._listing_answer(path == PAGE)
        answer = super()._handle(request)
        self._write_new()
        return answer

    def _listing_answer(self, page: bool) -> Outgoing:
        entries = self.listing()
        if not page:
            body = json.dumps({"messages": entries}, indent=1).encode()
            return Outgoing(200, [("Content-Type", "application/json")], body)
        rows = "".join(
            f"<tr><td>{html.escape(e['received'])}</td><td>{html.escape(str(e['webhook']))}"
            f"</td><td>{html.escape(str(e['title'] or ''))}</td></tr>"
            for e in reversed(entries)
        )
        text = (
            "<!doctype html><meta charset=utf-8><title>FakeDiscord</title>"
            f"<h1>FakeDiscord: {counted(len(entries), 'message')}</h1>"
            f"<p>JSON: <a href='{LISTING}'>{LISTING}</a></p>"
            f"<table><tr><th>received</th><th>webhook</th><th>title</th></tr>{rows}</table>"
        )
        return Outgoing(200, [("Content-Type", "text/html; charset=utf-8")], text.encode())
