"""The worker's start: the delivery engine (httpx, Jinja2, diskcache: a few hundred
milliseconds of imports in a fresh process) is built on a short-lived start thread while the
worker thread journals what is handed over meanwhile, so that a record is on disk from its
first moments on, even in a process killed during its start (docs/architecture.md,
"Start-up", rule 3)."""

from __future__ import annotations

import contextlib
import importlib
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from .notifier import Notifier

# How often the worker journals what is handed over while the notifier is being built.
EARLY_JOURNAL_INTERVAL: Final = 0.005


def build_while_journaling(
    factory: Callable[[], Notifier], journal_early: Callable[[], None], thread_name: str
) -> tuple[Notifier | None, Exception | None]:
    """Run ``factory`` on a start thread (inline when no thread can start: interpreter
    shutdown), calling ``journal_early`` every few milliseconds until it is done and once
    after; the notifier, or the exception that stopped it."""
    built = threading.Event()
    outcome: list[Notifier | Exception] = []

    def build() -> None:
        from .worker import ON_WORKER_THREAD  # the start thread's records are never sent

        ON_WORKER_THREAD.active = True
        try:
            outcome.append(factory())
            import_network_modules()
        except Exception as exc:  # noqa: BLE001 - said once by the worker
            outcome.append(exc)
        finally:
            built.set()

    starter = threading.Thread(target=build, name=thread_name, daemon=True)
    try:
        starter.start()
    except RuntimeError:  # no new thread at interpreter shutdown: build here
        build()
    while not built.wait(EARLY_JOURNAL_INTERVAL):
        journal_early()
    journal_early()
    found = outcome[-1] if outcome else RuntimeError("the start thread ended without a result")
    if isinstance(found, Exception):
        return None, found
    return found, None


def import_network_modules() -> None:
    """Import now what httpx and httpcore import lazily on the first request, so that a fork
    (see :meth:`Worker.wait_started`) never cuts one of these imports in half."""
    for name in ("anyio", "httpcore._backends.anyio", "h11"):
        with contextlib.suppress(ImportError):
            importlib.import_module(name)
