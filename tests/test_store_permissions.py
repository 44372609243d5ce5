"""A store only its owner can touch (issue 29, point 9): what the library creates is 0700
(directories) and 0600 (files); a store directory open to others is tightened when this user
owns it, refused with one message naming the path and the fix when it does not; a symbolic
link planted where the store or the journal should be is not followed."""

from __future__ import annotations

import contextlib
import logging
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from discord_logging import DiscordHandler
from discord_logging.cli.preflight import store_problem
from discord_logging.deadletters import DeadLetter, DeadLetterReason
from discord_logging.notification import Notification
from discord_logging.stats import DeliveryStats
from discord_logging.store import Store
from discord_logging.store._paths import UnsafeStoreDirectory, private_directory
from discord_logging.store.journal import SUFFIX, Journal
from discord_logging.testing import FakeDiscord

OTHER_UID = 65534  # nobody: "another user"
as_root = pytest.mark.skipif(
    os.geteuid() != 0, reason="giving a file to another user (chown) needs root"
)


@pytest.fixture
def loose_umask() -> Iterator[None]:
    """The common umask 022, with which mkdir and SQLite make files others can read."""
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


@contextlib.contextmanager
def _logging_to(
    fake: FakeDiscord, store: Path, **options: Any
) -> Iterator[tuple[logging.Logger, DiscordHandler]]:
    """A logger with a handler on ``store`` posting to ``fake``; closed afterwards."""
    handler = DiscordHandler(
        webhooks={"general": fake.add_webhook()},
        allowed_hosts=fake.host,
        store_path=str(store),
        aggregate_window=0,
        **options,
    )
    log = logging.getLogger("permissions")
    log.propagate = False
    log.addHandler(handler)
    try:
        yield log, handler
    finally:
        log.removeHandler(handler)
        handler.close()


def _modes(root: Path) -> dict[str, int]:
    """Every directory and file under ``root`` (itself included), by path: its mode."""
    found = {str(root): stat.S_IMODE(os.lstat(root).st_mode)}
    for path in root.rglob("*"):
        found[str(path.relative_to(root))] = stat.S_IMODE(os.lstat(path).st_mode)
    return found


def test_everything_the_library_creates_is_owner_only(
    fake_discord: FakeDiscord, tmp_path: Path, loose_umask: None
) -> None:
    """A handler's run during an outage (letters, history, the shared limits, a journal, a
    value large enough for diskcache's files), under umask 022: every directory 0700, every
    file 0600, SQLite's -wal and -shm companions included."""
    store = tmp_path / "deep" / "store"
    fake_discord.fail_next(10_000, 503)
    with _logging_to(fake_discord, store, retry_attempts=1) as (log, handler):
        log.error("a letter")
        log.error("a large one %s", "x" * 60_000)
        handler.flush(10)
        modes = _modes(tmp_path / "deep")  # while the process holds its files open
    modes.update({k: v for k, v in _modes(tmp_path / "deep").items() if k not in modes})
    names = set(modes)
    assert any(name.endswith("limits.sqlite3-wal") for name in names)
    assert any(name.endswith(".val") for name in names)
    assert any(name.endswith("cache.db-shm") for name in names)
    loose = {name: f"{mode:04o}" for name, mode in modes.items() if mode & 0o077}
    assert loose == {}


def test_directories_being_made_are_never_open_to_others(
    tmp_path: Path, loose_umask: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each missing directory, parents included, is owner-only from its ``mkdir`` on, before
    its ``chmod``: a process starting beside this one, checking the store in that instant,
    must not find it open to others (it did, and "tightened" it on stderr)."""
    made: dict[str, int] = {}
    real_mkdir = os.mkdir

    def mkdir(path: Any, mode: int = 0o777, **kwargs: Any) -> None:
        real_mkdir(path, mode, **kwargs)
        made[str(path)] = stat.S_IMODE(os.lstat(path).st_mode)

    monkeypatch.setattr(os, "mkdir", mkdir)
    private_directory(tmp_path / "a" / "b" / "store")
    assert made == {str(tmp_path / p): 0o700 for p in ("a", "a/b", "a/b/store")}


def test_an_open_store_directory_of_this_user_is_tightened(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A store directory made 0777 before the application started is made 0700 when the
    store opens, and said once on stderr."""
    path = tmp_path / "store"
    path.mkdir()
    path.chmod(0o777)
    store = Store(path)
    assert store.history is not None
    store.close()
    Store(path).close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o700
    lines = [line for line in capsys.readouterr().err.splitlines() if str(path) in line]
    assert lines == [
        f"discord-logging: the store directory {path} was open to other users (mode 0777); "
        "made 0700, owner only."
    ]


@as_root
@pytest.mark.parametrize("mode", [0o777, 0o700])
def test_a_store_directory_of_another_user_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], mode: int
) -> None:
    """A store directory another user owns (open or not: its owner can plant letters) is
    refused: one stderr line names the path and the fix; the letters stay in memory, nothing
    is written in it, its mode is left as it was."""
    path = tmp_path / "store"
    path.mkdir()
    path.chmod(mode)
    os.chown(path, OTHER_UID, OTHER_UID)
    with pytest.raises(UnsafeStoreDirectory, match="DISCORD_STORE_PATH"):
        private_directory(path)
    problem = store_problem(path)  # discord-logging check says the same
    assert problem is not None
    assert problem.startswith(f"the store directory {path} is owned by uid {OTHER_UID}")
    store = Store(path)
    assert store.history is None  # history off, letters in memory
    store.dead_letters.add(_letter())
    assert store.memory_only == 1
    store.close()
    assert list(path.iterdir()) == []
    assert stat.S_IMODE(path.stat().st_mode) == mode
    said = [line for line in capsys.readouterr().err.splitlines() if "discord-logging" in line]
    assert len(said) == 1
    assert f"the store directory {path} is owned by uid {OTHER_UID}" in said[0]
    assert "Fix: point DISCORD_STORE_PATH at a directory that does not exist yet" in said[0]


@as_root
def test_a_symlink_planted_as_the_store_is_not_followed(tmp_path: Path) -> None:
    """A symbolic link another user made where the store should be is refused: nothing is
    written where it points. One this user made is followed (a store on another disk)."""
    target = tmp_path / "victim"
    target.mkdir(mode=0o700)
    planted = tmp_path / "store"
    planted.symlink_to(target)
    os.lchown(planted, OTHER_UID, OTHER_UID)
    with pytest.raises(UnsafeStoreDirectory, match="symbolic link made by uid 65534"):
        private_directory(planted)
    store = Store(planted)
    assert store.history is None
    store.close()
    assert list(target.iterdir()) == []
    os.lchown(planted, os.geteuid(), os.getegid())  # now the user's own link
    store = Store(planted)
    assert store.history is not None
    store.close()
    assert (target / "history").is_dir()


@as_root
def test_a_symlink_planted_as_the_journal_is_not_followed(tmp_path: Path) -> None:
    """A link planted as the journal's directory, or under the name of its next segment,
    is never written through: the journal says it cannot be written and records live in
    memory."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    store = tmp_path / "store"
    store.mkdir(mode=0o700)
    (store / "journal").symlink_to(elsewhere)
    os.lchown(store / "journal", OTHER_UID, OTHER_UID)
    stats = DeliveryStats()
    journal = Journal(store / "journal", 1 << 20, stats)
    assert journal.append(["a"], b"[]") == 0
    journal.close()
    (store / "journal").unlink()
    (store / "journal").mkdir(mode=0o700)
    journal = Journal(store / "journal", 1 << 20, stats)
    victim = elsewhere / "victim"
    (store / "journal" / f"{journal.owner}.1{SUFFIX}").symlink_to(victim)
    assert journal.append(["b"], b"[]") == 0
    journal.close()
    assert not victim.exists()
    assert list(elsewhere.iterdir()) == []
    assert stats.get("journal_errors") == 2


def _letter() -> DeadLetter:
    notification = Notification(alert_type="general", title="t", message="m", level="ERROR")
    return DeadLetter(notification, "general", DeadLetterReason.SHUTDOWN)


@as_root
def test_a_handler_refuses_another_users_store_where_it_is_created(tmp_path: Path) -> None:
    """``DiscordHandler(...)`` (and so ``dictConfig``) refuses a store directory another user
    owns, naming the path and the fix, before anything is started or written there."""
    path = tmp_path / "store"
    path.mkdir(mode=0o700)
    os.chown(path, OTHER_UID, OTHER_UID)
    with pytest.raises(UnsafeStoreDirectory, match="Fix: point DISCORD_STORE_PATH"):
        DiscordHandler(
            webhooks={"general": "https://discord.com/api/webhooks/1/t"}, store_path=path
        )
    assert list(path.iterdir()) == []
