"""Who holds a journal, a claim or a slot, and whether it is still alive: one identity and one
liveness rule for all three (docs/architecture.md, "Holders: who is alive").

A holder's identity is ``<host>:<kernel>:<token>``. A holder of this kernel is alive exactly
while its lock file ``<store>/holders/<token>.lock`` is ``flock``-ed: the kernel releases it
when the process ends, whatever its pid or pid namespace (two containers that are both pid 1
on one volume, or a dead writer's pid reused by another process, change nothing). A holder of
another kernel cannot be probed: only its lease says (claims and slots have one).

Plain ``fcntl.flock`` rather than the ``filelock`` library: the rule needs a non-blocking
probe of *another* holder's lock from a fresh descriptor (without creating or deleting its
file), a lock file never followed through a symlink, and a forked child that drops its copy
of the descriptor at once; ``filelock`` wraps acquiring one's own lock, not these.
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
import weakref
from pathlib import Path
from typing import Final

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no flock; every local holder looks alive
    fcntl = None  # type: ignore[assignment]

from ._paths import private_directory

HOST: Final = socket.gethostname()
HOLDERS: Final = "holders"  # <store>/holders/<token>.lock
LOCK_SUFFIX: Final = ".lock"
# A lock file nobody holds is deleted by a taker of dead journals once it is this old: never
# one whose holder is between creating and locking it (a fraction of a second).
STALE_LOCK_AGE: Final = 60.0


def _kernel() -> str:
    """This kernel's boot id, shared by every container of the machine (``k`` + 12 hex
    digits); ``k`` alone where there is none (the host name then stands in)."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text(encoding="ascii")
    except OSError:
        return "k"
    return "k" + boot.strip().replace("-", "")[:12]


KERNEL: Final = _kernel()
_OPEN: weakref.WeakSet[Holder] = weakref.WeakSet()  # closed in a forked child


def new_token() -> str:
    """A holder's random token (never reused: 48 random bits)."""
    return os.urandom(6).hex()


class Holder:
    """A holder of the store at ``store``: its identity and its lock file, ``flock``-ed from
    construction until :meth:`release` (or the process's end). Raises OSError when the lock
    cannot be taken (a read-only store): then this holder writes no name that points to it."""

    def __init__(self, store: Path) -> None:
        self.token = new_token()
        self.identity = f"{HOST}:{KERNEL}:{self.token}"
        self.path = private_directory(store / HOLDERS) / f"{self.token}{LOCK_SUFFIX}"
        flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | os.O_NOFOLLOW
        self._fd = os.open(self.path, flags, 0o600)
        if fcntl is not None:
            fcntl.flock(self._fd, fcntl.LOCK_EX)  # a fresh file: nobody else has it
        _OPEN.add(self)

    @property
    def held(self) -> bool:
        return self._fd >= 0

    def release(self) -> None:
        """Give the lock up and delete the file: from now on this holder is gone."""
        if self._fd < 0:
            return
        with contextlib.suppress(OSError):
            self.path.unlink()
        self._drop()

    def _drop(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self._fd)
        self._fd = -1


def _close_in_child() -> None:
    # The child's copy of each descriptor shares the parent's lock: kept, a parent that dies
    # would look alive for as long as the child runs. The files stay: they are the parent's.
    for holder in list(_OPEN):
        holder._drop()
    _OPEN.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_close_in_child)


class Identity:
    """A holder identity read from a name or a claim's row: ``<host>:<kernel>:<token>``, or
    an earlier version's ``<host>:<pid>[:<token>]`` (``pid`` set, ``kernel`` empty)."""

    __slots__ = ("host", "kernel", "pid", "token")

    def __init__(self, host: str, kernel: str, token: str, pid: int | None) -> None:
        self.host, self.kernel, self.token, self.pid = host, kernel, token, pid

    @classmethod
    def parse(cls, text: str) -> Identity | None:
        host, _, rest = text.partition(":")
        middle, _, token = rest.partition(":")
        if middle.isdigit():
            return cls(host, "", token, int(middle))
        if middle.startswith("k") and token and host:
            return cls(host, middle, token, None)
        return None

    @property
    def this_kernel(self) -> bool:
        """Whether its lock can be probed here (same boot id, or no boot id and this host)."""
        return self.pid is None and self.kernel == KERNEL and (KERNEL != "k" or self.host == HOST)


class Liveness:
    """Probes holders' locks in the store at ``store``, each at most once per instance (one
    transaction, one look for dead journals)."""

    def __init__(self, store: Path) -> None:
        self.directory = store / HOLDERS
        self._seen: dict[str, bool] = {}

    def alive(self, identity: Identity) -> bool | None:
        """True or False for a holder of this kernel; None for one no lock can tell about
        (another kernel's, an earlier version's): only its lease or its host name can."""
        if not identity.this_kernel:
            return None
        token = identity.token
        found = self._seen.get(token)
        if found is None:
            found = self._seen[token] = locked(self.directory / f"{token}{LOCK_SUFFIX}")
        return found

    def sweep(self) -> None:
        """Delete lock files nobody holds that are older than STALE_LOCK_AGE (left by
        processes that were killed)."""
        try:
            entries = list(os.scandir(self.directory))
        except OSError:
            return
        limit = time.time() - STALE_LOCK_AGE
        for entry in entries:
            with contextlib.suppress(OSError):
                old = entry.name.endswith(LOCK_SUFFIX) and entry.stat().st_mtime < limit
                if old and not locked(Path(entry.path)):
                    os.unlink(entry.path)


def locked(path: Path) -> bool:
    """Whether some process holds ``path``'s lock (no file: nobody)."""
    if fcntl is None:  # pragma: no cover - Windows
        return path.exists()
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
    except OSError:
        return False  # gone (released, swept), or not a lock file of ours (a symlink)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:  # held (EWOULDBLOCK); anything else cannot tell: alive, never taken
        return True
    finally:
        os.close(fd)  # also releases the shared lock just taken
    return False


def pid_runs(pid: int) -> bool:
    """An earlier version's rule, for its journals only: whether ``pid`` runs here (this
    process's own pid is another's earlier life: this version writes no such names)."""
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True
