"""Where the store lives and how its directories and files are made private: light (no
diskcache), because the journal opens its directory before the worker imports anything heavy
(docs/architecture.md, "The journal")."""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path
from typing import TYPE_CHECKING, Final

from ..errors import ConfigurationError

if TYPE_CHECKING:
    from ..settings import DiscordSettings
from ..wording import write_line

DIRECTORY_MODE: Final = 0o700
FILE_MODE: Final = 0o600


def default_store_path() -> Path:
    """The per-user cache directory used when DISCORD_STORE_PATH is not set."""
    import platformdirs

    return Path(platformdirs.user_cache_dir("discord-logging")) / "store"


def limits_directory(settings: DiscordSettings) -> Path:
    """Where the limits every process of this host shares live: the store directory, whether
    or not the letters are kept there (a custom sink, a store degraded to memory)."""
    return store_directory(settings.store_path)


def store_directory(store_path: Path | str | None) -> Path:
    """The store directory a setting names, or the per-user default."""
    return Path(store_path) if store_path else default_store_path()


class UnsafeStoreDirectory(ConfigurationError, PermissionError):
    """A store directory another user could reach: refused (docs/security.md). A
    ``PermissionError`` too: what handles a directory it may not use handles this one."""

    def __init__(self, path: Path, problem: str) -> None:
        self.problem = f"the store directory {path} {problem}"  # without the fix, for a 2nd line
        super().__init__(
            f"the store directory {path} {problem}: another user could read the alerts "
            "and plant letters. Fix: point DISCORD_STORE_PATH at a directory that does not "
            "exist yet (it is created 0700, owner only), or give this one to the "
            f"application's user (uid {os.geteuid()}) and make it 0700."
        )


def private_directory(path: Path) -> Path:
    """The store's directory ``path``, only its owner's (docs/security.md, "A store only its
    owner can touch"): created with its missing parents, mode 0700; an existing one is
    checked with ``lstat``: this user's and open to others, tightened to 0700 (said once);
    another user's, or one that cannot be tightened, or a symbolic link another user made,
    refused with :class:`UnsafeStoreDirectory`."""
    if os.path.lexists(path):  # before mkdir: a planted link is never followed
        _check_owned(path)
    else:
        _create_private(path)
    return path


def _create_private(path: Path) -> None:
    """Create ``path`` and its missing parents, mode 0700, parents first, each by its own
    ``mkdir`` with mode 0700: ``Path.mkdir(parents=True)`` makes the parents with the umask
    alone (0755), and a neighbour checking one in that instant found it open to others."""
    for directory in (*reversed(path.parents), path):
        if os.path.lexists(directory):
            continue
        try:
            os.mkdir(directory, DIRECTORY_MODE)
        except FileExistsError:
            continue  # there already, or a neighbour made it: _check_owned is for those
        os.chmod(directory, DIRECTORY_MODE)  # a umask that takes the owner's bits too


def refuse_unsafe_store(path: Path) -> None:
    """Where a handler is created: :class:`UnsafeStoreDirectory` when the store directory
    exists and another user owns it (or planted a link there); a directory of this user that
    is open to others is tightened later, when it is opened. Only ``lstat``/``stat``."""
    if not os.path.lexists(path):
        return
    found = os.lstat(path)
    me = os.geteuid()
    if stat.S_ISLNK(found.st_mode) and found.st_uid != me:
        raise UnsafeStoreDirectory(path, f"is a symbolic link made by uid {found.st_uid}")
    if stat.S_ISLNK(found.st_mode):
        try:
            found = os.stat(path)
        except OSError:
            return  # a dangling link of this user's: opening says what is wrong
    if found.st_uid != me:
        mode = stat.S_IMODE(found.st_mode)
        raise UnsafeStoreDirectory(path, f"is owned by uid {found.st_uid} (mode {mode:04o})")


def _check_owned(path: Path) -> None:
    me = os.geteuid()
    found = os.lstat(path)
    if stat.S_ISLNK(found.st_mode):
        if found.st_uid != me:  # planted: a link cannot be given away without root
            raise UnsafeStoreDirectory(path, f"is a symbolic link made by uid {found.st_uid}")
        found = os.stat(path)  # this user's own link (a store put on another disk)
    if found.st_uid != me:
        mode = stat.S_IMODE(found.st_mode)
        raise UnsafeStoreDirectory(path, f"is owned by uid {found.st_uid} (mode {mode:04o})")
    if found.st_mode & 0o077:
        try:
            os.chmod(path, DIRECTORY_MODE)
        except OSError as exc:
            raise UnsafeStoreDirectory(
                path, f"is open to other users and cannot be made 0700 ({exc.strerror})"
            ) from exc
        _say_tightened(path, stat.S_IMODE(found.st_mode))


_TIGHTENED: set[Path] = set()


def _say_tightened(path: Path, mode: int) -> None:
    if path not in _TIGHTENED:
        _TIGHTENED.add(path)
        write_line(
            f"discord-logging: the store directory {path} was open to other users (mode "
            f"{mode:04o}); made 0700, owner only.",
        )


def private_file(path: Path) -> Path:
    """Create ``path`` if missing with mode 0600, for a file inside the store's own directory
    (checked private by :func:`private_directory`); a missing directory is created 0700.
    Exports, which go where the user says, use :mod:`._exports` instead."""
    _create_private(path.parent)
    if not path.exists():
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY | os.O_NOFOLLOW, FILE_MODE))
    return path


def private_parent(path: Path) -> None:
    """Create the missing directories above the file ``path``, mode 0700; an existing one is
    the user's choice and left as it is (an export's directory)."""
    _create_private(path.parent)


def private_sqlite_files(database: Path) -> None:
    """Make an SQLite database and its ``-wal``/``-shm`` companions 0600 (created with the
    umask); SQLite gives the companions it creates later the database file's mode."""
    for name in (database.name, database.name + "-wal", database.name + "-shm"):
        with contextlib.suppress(FileNotFoundError):
            os.chmod(database.with_name(name), FILE_MODE)
