"""The per-process journal: what the worker took from the hand-off, on disk before anything
else is done with it, so that a process that dies without running its exit (SIGKILL, the OOM
killer, ``os._exit``) leaves its records for the next start or a live sibling
(docs/architecture.md, "The journal").

A journal is a few **segments** in ``<store>/journal/``, each named
``<holder>.<seq>.jnl``: the journal is a holder of its own (:mod:`._holders`), alive while its
lock file is held, whatever its pid. A segment is a sequence of **frames**, each
``<payload length: u32 LE><CRC32 of kind and payload: u32 LE><kind: 1 byte><payload>``:

- ``r`` records: a compact JSON list of the group's records, each its id, the webhook
  identity and lane it is for, and its snapshot;
- ``s`` settled: record ids of this segment, comma-separated, delivered or durably kept;
- ``f`` sent: ids of records a request to Discord carries (recovered as ``uncertain``);
- ``b`` answered: ids of records back from a request that certainly did not post them.

Every frame goes to an ``O_APPEND`` descriptor in one ``os.write``: the kernel has the
bytes once the call returns, so they survive the process being killed (not the machine
losing power: nothing is synced). A write cut short by a full disk is cut back to the last
whole frame and counted (``journal_full``; docs/architecture.md, "A full disk"); one cut short
otherwise (the machine down) leaves a torn last frame (its length runs past the end or its
CRC does not match): reading stops there and counts it; the frames before are whole. A segment
holds the settle marks of its own records only, so it is deleted on its own once every
record in it is settled; the next records then start a new one.
"""

from __future__ import annotations

import contextlib
import os
import struct
import threading
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from ..stats import DeliveryStats
from ..wording import write_line
from ._full import LOOK_CLOSER, STORE_RESERVE, free_bytes, is_full
from ._holders import HOST, Holder, Identity, Liveness, pid_runs
from ._paths import private_directory

RECORD: Final = ord("r")
SETTLED: Final = ord("s")
SENT: Final = ord("f")
ANSWERED: Final = ord("b")
HEADER: Final = struct.Struct("<IIB")
SUFFIX: Final = ".jnl"
TAKEN: Final = "@"  # <segment>@<taker>: being recovered by that process (an exclusive rename)
SEGMENT_BYTES: Final = 1024 * 1024  # a segment takes new records until this size
# A segment whose records are all settled is deleted at once, except the current one while it
# is small: a quiet process then keeps one descriptor instead of creating a file per record.
KEEP_EMPTY_BYTES: Final = 64 * 1024


def frame(kind: int, payload: bytes) -> bytes:
    """One frame: header (length, CRC32 of kind and payload, kind), then the payload."""
    crc = zlib.crc32(payload, zlib.crc32(bytes((kind,))))
    return HEADER.pack(len(payload), crc, kind) + payload


def frames(data: bytes) -> tuple[list[tuple[int, bytes]], bool]:
    """The frames of a segment's bytes, and whether it ended in a torn or corrupt frame
    (reading stops at the first frame that is not whole and intact)."""
    out: list[tuple[int, bytes]] = []
    at, end, size = 0, len(data), HEADER.size
    while at < end:
        if end - at < size:
            return out, True
        length, crc, kind = HEADER.unpack_from(data, at)
        payload = data[at + size : at + size + length]
        if len(payload) < length or zlib.crc32(payload, zlib.crc32(bytes((kind,)))) != crc:
            return out, True
        out.append((kind, payload))
        at += size + length
    return out, False


@dataclass(slots=True)
class _Segment:
    seq: int
    path: Path
    fd: int
    size: int = 0
    outstanding: int = 0  # records written here and not settled yet


def gone(writer: Identity, liveness: Liveness) -> bool:
    """Whether the holder that wrote a journal is gone: its lock is not held (this kernel);
    or it ran on this host name before this kernel started (a reboot, a pod rescheduled with
    its volume); or, named by an earlier version, this host's pid no longer runs. Another
    host's journal: never known, never taken."""
    alive = liveness.alive(writer)
    if alive is not None:
        return not alive
    if writer.host != HOST:
        return False
    return writer.pid is None or not pid_runs(writer.pid)


@dataclass
class Journal:
    """This process's journal in ``directory``: at most ``max_bytes`` of segments; what does
    not fit is not journaled (counted as ``journal_full``) and lives only in memory."""

    directory: Path
    max_bytes: int
    stats: DeliveryStats
    segment_bytes: int = SEGMENT_BYTES

    def __post_init__(self) -> None:
        self._holder: Holder | None = None  # its lock, taken before its first segment
        self._lock = threading.Lock()
        self._segments: dict[int, _Segment] = {}
        self._where: dict[str, _Segment] = {}  # record id -> its segment, until settled
        self._current: _Segment | None = None
        self._seq = 0
        self._bytes = 0
        self._broken = False
        self._closed = False

    @property
    def owner(self) -> str:
        """This journal's holder identity (its lock taken now if not yet)."""
        if self._holder is None:
            self._holder = Holder(self.directory.parent)
        return self._holder.identity

    @property
    def outstanding(self) -> int:
        """Records journaled and not settled."""
        return len(self._where)

    def held_ids(self) -> frozenset[str]:
        """The ids of the records journaled and not settled (the next start takes them)."""
        with self._lock:
            return frozenset(self._where)

    @property
    def size(self) -> int:
        """Bytes of this journal's segments on disk."""
        return self._bytes

    def append(self, record_ids: Sequence[str], payload: bytes) -> int:
        """Journal a group of records (``payload`` holds them all; ``record_ids`` names them)
        in one frame and one write; returns how many were journaled: all, or none when the
        group does not fit in what is left of ``max_bytes``."""
        with self._lock:
            if self._broken or self._closed or not record_ids:
                return 0
            current = self._current
            if current is not None and current.size >= self.segment_bytes:
                if current.outstanding == 0:
                    self._delete(current)  # settled and full: its room is free again
                self._current = None
            if HEADER.size + len(payload) > self.max_bytes - self._bytes or self._no_room(payload):
                self.stats.add("journal_full", len(record_ids))
                return 0
            segment = self._segment_for_records()
            if segment is None or not self._write(segment, frame(RECORD, payload), record_ids):
                return 0
            for record_id in record_ids:
                self._where[record_id] = segment
            segment.outstanding += len(record_ids)
            return len(record_ids)

    def sent(self, record_ids: Iterable[str]) -> None:
        """Mark records a request carries: recovered as ``uncertain`` if never settled."""
        with self._lock:
            self._mark(SENT, record_ids, settle=False)

    def answered(self, record_ids: Iterable[str]) -> None:
        """Records back from a request whose answer says they were not posted."""
        with self._lock:
            self._mark(ANSWERED, record_ids, settle=False)

    def settle(self, record_ids: Iterable[str]) -> None:
        """Records delivered or durably kept (or dropped): they leave the journal. Settle marks
        are never refused for want of room: a record left unsettled would be posted again."""
        with self._lock:
            self._mark(SETTLED, record_ids, settle=True)

    def close(self) -> None:
        """Delete the segments whose records are all settled and close every descriptor; a
        segment still holding records stays for the next start to recover."""
        with self._lock:
            self._closed = True
            for segment in list(self._segments.values()):
                if segment.outstanding == 0:
                    self._delete(segment)
                else:
                    self._close_fd(segment)
            self._segments.clear()
            self._current = None
            if self._holder is not None:
                self._holder.release()  # what is left is the next taker's

    # -- internals (under the lock) ----------------------------------------------------------

    def _mark(self, kind: int, record_ids: Iterable[str], *, settle: bool) -> None:
        if self._closed:  # what is left is the next start's to recover
            return
        groups: dict[int, list[str]] = {}
        where = self._where
        for record_id in record_ids:
            segment = where.pop(record_id, None) if settle else where.get(record_id)
            if segment is not None:
                groups.setdefault(segment.seq, []).append(record_id)
        for seq, ids in groups.items():
            segment = self._segments[seq]
            self._write(segment, frame(kind, ",".join(ids).encode("ascii")))
            if settle:
                segment.outstanding -= len(ids)
                if segment.outstanding == 0 and (
                    segment is not self._current or segment.size >= KEEP_EMPTY_BYTES
                ):
                    self._delete(segment)

    def _no_room(self, payload: bytes) -> bool:
        """Whether journaling ``payload`` would leave the volume less free than the journal
        holds plus the store's reserve: the store must find room for the letters the journal
        holds (docs/architecture.md, "A full disk")."""
        free = free_bytes(self.directory.parent)
        return (
            free is not None
            and free < LOOK_CLOSER
            and (free - len(payload) < self._bytes + len(payload) + STORE_RESERVE)
        )

    def _segment_for_records(self) -> _Segment | None:
        if self._current is not None:
            return self._current
        self._seq += 1
        try:
            path = self.directory / f"{self.owner}.{self._seq}{SUFFIX}"
            private_directory(self.directory)
            # O_NOFOLLOW: a link planted under a segment's name is never written through.
            flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC | os.O_NOFOLLOW
            fd = os.open(path, flags, 0o600)
        except OSError as exc:
            self._fail(exc)
            return None
        segment = self._current = self._segments[self._seq] = _Segment(self._seq, path, fd)
        return segment

    def _write(self, segment: _Segment, data: bytes, records: Sequence[str] = ()) -> bool:
        try:
            written = os.write(segment.fd, data)
        except OSError as exc:
            if not is_full(exc):
                self._fail(exc)
                return False
            written = -1
        if 0 <= written == len(data):
            segment.size += written
            self._bytes += written
            return True
        # The disk is full: cut back to the last whole frame, so no torn tail hides the frames
        # written after it; what was not written is counted, and the journal goes on.
        try:
            if written > 0:
                os.ftruncate(segment.fd, segment.size)
        except OSError as exc:
            segment.size += written
            self._bytes += written
            self._fail(exc)
            return False
        self.stats.add("journal_full" if records else "journal_errors", len(records) or 1)
        return False

    def _delete(self, segment: _Segment) -> None:
        self._close_fd(segment)
        with contextlib.suppress(FileNotFoundError):
            segment.path.unlink()
        self._bytes -= segment.size
        self._segments.pop(segment.seq, None)
        if segment is self._current:
            self._current = None

    @staticmethod
    def _close_fd(segment: _Segment) -> None:
        if segment.fd >= 0:
            with contextlib.suppress(OSError):
                os.close(segment.fd)
            segment.fd = -1

    def _fail(self, exc: OSError) -> None:
        """The journal cannot be written: records from now on live only in memory, as
        without a journal; counted (``journal_errors``) and said once."""
        self.stats.add("journal_errors")
        if not self._broken:
            self._broken = True
            write_line(
                f"discord-logging: the journal in {self.directory} cannot be written "
                f"({type(exc).__name__}: {exc}); records are kept only in memory until they "
                "are delivered or kept in the store (lost if the process is killed).",
            )


def dead_segments(directory: Path) -> list[tuple[Path, Identity]]:
    """Journal segments in ``directory`` whose holders are gone (and those a taker that is
    gone was taking), each with its writer; never another host's (see :func:`gone`)."""
    found: list[tuple[Path, Identity]] = []
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return found
    liveness = Liveness(directory.parent)
    for entry in entries:
        name = entry.name
        base, _, taker = name.partition(TAKEN)
        if not base.endswith(SUFFIX):
            continue
        writer = Identity.parse(base.rsplit(".", 2)[0])
        if writer is None:
            continue
        holder = Identity.parse(taker) if taker else writer
        if holder is not None and gone(holder, liveness):
            found.append((Path(entry.path), writer))
    return found


def take(path: Path, me: str) -> Path | None:
    """Take a dead segment for recovery by renaming it to ``<segment>@<me>``: of two
    processes that try, one rename succeeds and the other finds the file gone (None)."""
    target = path.with_name(f"{path.name.partition(TAKEN)[0]}{TAKEN}{me}")
    try:
        os.rename(path, target)
    except FileNotFoundError:
        return None
    return target


def give_back(path: Path) -> None:
    """Undo :func:`take` (the store could not take its records now): a later look retries."""
    with contextlib.suppress(OSError):
        os.rename(path, path.with_name(path.name.partition(TAKEN)[0]))
