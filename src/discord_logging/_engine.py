"""What a :class:`~discord_logging.DiscordHandler` builds for its worker: the journal first (on
the worker thread, before anything heavy is imported), then the store and the delivery
engine (on the worker's start thread: httpx, Jinja2 and diskcache load there, never on the
caller's thread). See docs/architecture.md, "Start-up"."""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .capture.routing import Router
from .deadletters import DeadLetterSink
from .settings import DiscordSettings
from .stats import DeliveryStats

if TYPE_CHECKING:
    from .delivery.journaling import RecordJournal
    from .delivery.memory import MemoryBound
    from .delivery.notifier import Notifier
    from .delivery.worker import Worker
    from .store import Store


class EngineParts:
    """The handler's store, notifier and journal, built when its worker needs them."""

    _settings: DiscordSettings
    router: Router
    _stats: DeliveryStats
    _engine_options: Mapping[str, Any]
    _worker: Worker | None
    _store: Store | None = None
    _store_wanted = False  # a forked child builds its store on first use, not in the hook
    _store_lock: threading.Lock
    _dead_letters: DeadLetterSink | None = None
    _pid: int
    _closed: bool

    def _new_store(self) -> Store | None:
        if self._dead_letters is not None:
            return None
        from .store import Store

        s = self._settings
        return Store(
            s.store_path,
            retention_days=s.history_retention_days,
            max_bytes=s.history_max_bytes,
            export_dir=s.history_export_dir,
            dead_letter_retention_days=s.dead_letter_retention_days,
            dead_letter_max_bytes=s.dead_letter_max_bytes,
            stats=self._stats,
        )

    @property
    def store(self) -> Store | None:
        """The history and dead-letter store (None with a custom ``dead_letters`` sink)."""
        if self._store is None and self._store_wanted:
            with self._store_lock:
                if self._store is None and self._store_wanted:
                    self._store = self._new_store()
                    self._store_wanted = False
        return self._store

    @property
    def dead_letters(self) -> DeadLetterSink:
        """Where undelivered notifications are kept."""
        if self._dead_letters is not None:
            return self._dead_letters
        store = self.store
        if store is None:  # __init__ failed on a bad setting
            raise RuntimeError("the handler has no store")
        return store.dead_letters

    def _make_notifier(self) -> Notifier:
        """On the worker thread: settings, store and templates are loaded and checked here."""
        from .delivery.notifier import Notifier

        options = dict(self._engine_options)
        # Every process using this store directory shares Discord's limits through it.
        options.setdefault("store_dir", self._store_dir())
        # The user's templates and buttons were checked where the handler was created; the
        # built-in templates are checked by the test suite, not at every start.
        options.setdefault("templates_checked", True)
        store = self.store
        notifier = Notifier(
            self._settings,
            dead_letters=self.dead_letters,
            stats=self._stats,
            listeners=[store.record] if store is not None else [],
            **options,
        )
        worker = self._worker
        journal = worker.journal if worker is not None else None
        if journal is not None and store is not None:
            journal.attach(notifier, store)  # before the lanes start (they report to it)
        return notifier

    def _memory_bound(self) -> MemoryBound:
        """This worker's bound on records in memory, with the store's share of them."""
        from .delivery.memory import MemoryBound

        def store_letters() -> int:
            store = self._store  # not built here: the start thread builds it
            if store is None:
                return 0
            # Kept in memory after a disk failure, or not written yet (counted, not walked).
            return len(store.memory) + store._buffer.letters_held()

        return MemoryBound(self._settings.memory_max_records, store_letters)

    def _store_dir(self) -> Path:
        # The limits are shared through the store directory whatever keeps the letters (a
        # custom sink, a store degraded to memory): where the directory cannot be used either,
        # the host coordinator keeps to DISCORD_RATE_LIMIT // DISCORD_FLEET_SIZE, never the
        # whole limit beside the other processes.
        from .store import limits_directory

        return limits_directory(self._settings)

    def _make_journal(self) -> RecordJournal | None:
        """This process's journal, opened first on the worker thread (nothing heavy imported:
        the webhook identities come from the URLs); none without the store (a custom
        ``dead_letters`` sink: its letters are not this library's to recover) or when off."""
        settings = self._settings
        if self._dead_letters is not None or not settings.journal:
            return None
        from .delivery.journaling import early_journal
        from .delivery.setup import lanes_by_webhook
        from .store._paths import store_directory

        urls = settings.webhook_urls
        lane_of = {name: names[0] for names, _ in lanes_by_webhook(urls) for name in names}
        router = self.router

        def route(alert_type: str) -> tuple[str, str] | None:
            carrier = router.carrier(alert_type)
            if carrier is None:
                return None
            return urls[carrier].identity, lane_of[carrier]

        directory = store_directory(settings.store_path) / "journal"
        return early_journal(directory, settings.journal_max_bytes, route, self._stats)

    @staticmethod
    def _close_journal(worker: Worker | None) -> None:
        """After the store wrote its letters, which settled their records."""
        if worker is not None:
            worker.close_journal()

    def _metric_gauges(self) -> dict[str, int]:
        """What the metrics' gauges read: nothing until this process's worker runs; never
        starts it nor opens the store (docs/architecture.md, "Metrics")."""
        worker = self._worker if self._pid == os.getpid() else None
        if worker is None or self._closed:
            return {}
        kept = len(self._dead_letters) if self._dead_letters is not None else 0
        store = self._store
        if store is not None:
            kept = len(store.dead_letters)
        try:
            circuits = worker.notifier.open_circuits()
        except RuntimeError:  # still starting
            circuits = 0
        return {
            "queue_depth": worker.queue_depth(),
            "queue_capacity": worker.memory.limit,
            "dead_letters_kept": kept,
            "open_circuits": circuits,
        }
