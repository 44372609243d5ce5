"""The fault matrix: long variants (``@pytest.mark.long``) run only when asked for; their quick
variants run in every suite. (``slow`` is another thing: the tier of tests that start real
processes or servers, which ``pytest -m "not slow"`` leaves out.)

Ask with ``--run-long`` (when pytest is pointed at tests/reliability, which makes this an
initial conftest) or with the environment variable ``DISCORD_LOGGING_LONG=1`` (always works,
also for a run of the whole suite, where pytest does not call a sub-directory's
``pytest_addoption``).
"""

from __future__ import annotations

import gc
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from discord_logging.testing import FakeDiscord

from .faultkit import fast_fake

HERE = Path(__file__).parent
LONG_ENV = "DISCORD_LOGGING_LONG"


def pytest_addoption(parser: pytest.Parser) -> None:
    """``--run-long``: also run the long fault variants."""
    parser.addoption(
        "--run-long", action="store_true", default=False, help="run the long fault variants"
    )


def _run_long(config: pytest.Config) -> bool:
    if os.environ.get(LONG_ENV) == "1":
        return True
    try:
        return bool(config.getoption("--run-long"))
    except ValueError:  # the option was not registered (not an initial conftest)
        return False


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip this directory's long tests unless asked for."""
    if _run_long(config):
        return
    skip = pytest.mark.skip(reason=f"long fault run: use --run-long or {LONG_ENV}=1")
    for item in items:
        if item.get_closest_marker("long") and HERE in item.path.parents:
            item.add_marker(skip)


@pytest.fixture
def fake() -> Iterator[FakeDiscord]:
    """A started FakeDiscord with short windows, stopped after the test."""
    with fast_fake() as server:
        yield server


@pytest.fixture(autouse=True)
def _freeze_the_test_session_heap() -> Iterator[None]:
    """Move everything alive before the test (pytest's own objects, earlier tests' garbage
    collected first) out of the collector's reach, so that a full collection during a timed
    logger call costs what the handler allocated, not what the session did: the emit bound
    measures the handler, not pytest's heap."""
    gc.collect()
    gc.freeze()
    yield
    gc.unfreeze()
