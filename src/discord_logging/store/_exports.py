"""Export files: text of the alerts written outside the store, into a new file of this user's
or nowhere (docs/architecture.md, "Untrusted input"; docs/security.md, "Exports").

An export's directory may be shared with other users (``/tmp``, a team directory). Whatever
sits at the export's path may have been put there by one of them: a symbolic link to a file
of ours (writing through it would overwrite that file), or a file of theirs, mode 0666
(writing into it would hand them the alerts). So an export is never written through an
existing path: it is created with ``O_CREAT | O_EXCL | O_NOFOLLOW`` (mode 0600), or written
to a private temporary file beside it and renamed over it (``--force``), which replaces the
directory entry and never writes into what was there.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Final, TextIO

from ..wording import write_line
from ._paths import FILE_MODE

_NOFOLLOW: Final = getattr(os, "O_NOFOLLOW", 0)
_NONBLOCK: Final = getattr(os, "O_NONBLOCK", 0)
_CLOEXEC: Final = getattr(os, "O_CLOEXEC", 0)
_NEW: Final = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | _CLOEXEC
_APPEND: Final = os.O_WRONLY | os.O_APPEND | os.O_CREAT | _NOFOLLOW | _NONBLOCK | _CLOEXEC


class ExportRefused(PermissionError):
    """An export path that is not written: it exists (without ``--force``), or it is a
    symbolic link, not a regular file, or another user's file (even with ``--force``)."""

    def __init__(self, path: Path, problem: str, fix: str) -> None:
        self.path = path
        super().__init__(f"the export file {path} {problem}: {fix}")


def _unsafe(path: Path, found: os.stat_result) -> str | None:
    """Why the existing ``found`` at ``path`` must never be written through, or None."""
    if stat.S_ISLNK(found.st_mode):
        return f"is a symbolic link (made by uid {found.st_uid})"
    if not stat.S_ISREG(found.st_mode):
        return "is not a regular file"
    if found.st_uid != os.geteuid():
        mode = stat.S_IMODE(found.st_mode)
        return f"is owned by uid {found.st_uid} (mode {mode:04o}), not by this user"
    if found.st_nlink != 1:
        return f"has {found.st_nlink} hard links"
    return None


@contextlib.contextmanager
def new_export(path: Path, *, force: bool = False) -> Iterator[TextIO]:
    """A new file at ``path``, mode 0600, open for writing text; left out if the block fails.

    Without ``force`` an existing path is refused (:class:`ExportRefused`); with it, an existing
    regular file of this user (one link) is replaced by renaming a private temporary file over
    it once the block ends, and anything else (a link, another user's file) is still refused.
    The directory must exist."""
    try:
        found: os.stat_result | None = os.lstat(path)
    except FileNotFoundError:
        found = None
    if found is not None:
        problem = _unsafe(path, found)
        if problem is not None:
            raise ExportRefused(
                path, problem, "it is never written through; remove it or choose another file"
            )
        if not force:
            raise ExportRefused(
                path, "already exists", "pass --force to replace it, or choose another file"
            )
        yield from _replacing(path)
        return
    try:
        fd = os.open(path, _NEW, FILE_MODE)
    except FileExistsError:  # made since the lstat: whatever it is, it is not ours to open
        raise ExportRefused(
            path, "appeared while it was being created", "choose another file"
        ) from None
    yield from _filled(fd, path, path)


def _replacing(path: Path) -> Iterator[TextIO]:
    """Write a private temporary file beside ``path`` and rename it over ``path``: the entry
    is replaced, whatever it became since it was checked; nothing is written into it."""
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    yield from _filled(fd, Path(temporary), path)


def _filled(fd: int, written: Path, final: Path) -> Iterator[TextIO]:
    """Yield ``fd`` (made 0600: the umask may have left less) as text; on success
    ``written`` is renamed to ``final`` (when they differ), on failure it is removed."""
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            os.fchmod(fd, FILE_MODE)
            yield out
        if written != final:
            os.replace(written, final)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(written)
        raise


_SAID: set[Path] = set()


def appended_export(path: Path) -> TextIO:
    """``path`` open for appending text (created 0600 when missing): the day's file of purged
    rows. Used only when it is a regular file of this user with one link, opened without
    following a link (and without blocking on a FIFO); otherwise the rows go to a new file
    ``<stem>-<random><suffix>`` beside it, said once on stderr. Raises OSError when neither
    can be opened (an unwritable directory)."""
    problem = None
    try:
        fd = os.open(path, _APPEND, FILE_MODE)
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            raise  # no directory: no other name would do better
        problem = _refusal(path, exc)
    else:
        problem = _unsafe(path, os.fstat(fd))
        if problem is None:
            os.fchmod(fd, FILE_MODE)
            os.set_blocking(fd, True)
            return os.fdopen(fd, "a", encoding="utf-8")
        os.close(fd)
    fd, other = tempfile.mkstemp(dir=path.parent, prefix=f"{path.stem}-", suffix=path.suffix)
    if path not in _SAID:
        _SAID.add(path)
        write_line(
            f"discord-logging: the export file {path} {problem}: it is never written through; "
            f"purged rows went to {other} instead. Remove {path.name} if you did not make it."
        )
    os.fchmod(fd, FILE_MODE)
    return os.fdopen(fd, "a", encoding="utf-8")


def _refusal(path: Path, exc: OSError) -> str:
    """What an existing ``path`` that could not be opened is, for the message."""
    with contextlib.suppress(OSError):
        problem = _unsafe(path, os.lstat(path))
        if problem is not None:
            return problem
    return f"could not be opened ({exc.strerror})"
