"""The usage journal: each billed request is appended to a local file before its response
leaves, so a crash of the process (SIGKILL included) loses nothing a client saw served, and the
request never waits for a database commit.

Each file is a fixed-size segment mapped into memory (MAP_SHARED): an append is a copy into the
kernel's page cache, which outlives the process, with no system call and no release of the GIL
on almost every request (a write(2) per request let the ledger's thread take the GIL and made
every request wait for it; one per ~450 requests remains, below). Like SQLite's WAL with
synchronous=NORMAL, only a power loss can drop the newest lines. The unwritten tail of a
segment is zeros, so a reader stops at the first NUL.

The segment's space is reserved when it is opened, but reserved blocks are "unwritten" to the
filesystem: the first store to each page through the mapping faulted into the kernel to convert
its block, about ten microseconds of a request's time every 28 lines. So zeros are written ahead
of the appends with pwrite, `ZEROED_AHEAD` bytes at a time (one system call per ~450 lines),
and the appends land on ordinary page-cache pages.

The ledger's writer rotates the journal when it takes a batch and deletes the batch's files once
the batch is committed. At start, files left by a process that is gone are replayed into the
ledger; the idempotency keys make a replay of already committed lines harmless.
"""

from __future__ import annotations

import contextlib
import fcntl
import mmap
import os
import secrets
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import orjson
import structlog

from flotta.billing.categories import Category
from flotta.billing.events import UsageEvent

log = structlog.get_logger(__name__)

SUFFIX = ".usage"
LOCK_SUFFIX = ".lock"
# A line is always these 8 values (key, account, app, device, category, quantity, time,
# status), which `decode` reads, whatever fields UsageEvent gains after them: a journal must
# replay in the version before and after.
LINE_FIELDS = 8
# One segment holds about 25,000 events; a busier second simply opens the next segment.
SEGMENT_BYTES = 4 << 20
# Zeros written ahead of the appends at a time (see the module's docstring).
ZEROED_AHEAD = 64 << 10
_ZEROS = bytes(ZEROED_AHEAD)


def encode(event: UsageEvent) -> bytes:
    """One JSON line of the event's first LINE_FIELDS fields, in order; orjson writes the
    category by value and the aware datetime as RFC 3339 itself (in C, on the hot path)."""
    return orjson.dumps(event[:LINE_FIELDS], option=orjson.OPT_APPEND_NEWLINE)


def decode(line: bytes) -> UsageEvent | None:
    """An event from one line; None for a line a crash cut short (its response never left)."""
    try:
        key, account, client, device, category, quantity, at, status = orjson.loads(line)
        return UsageEvent(
            str(key),
            int(account),
            str(client),
            str(device),
            Category(category),
            int(quantity),
            datetime.fromisoformat(at),
            int(status),
        )
    except (orjson.JSONDecodeError, ValueError, TypeError):
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Journal:
    """This process's usage segments in `directory`: `<owner>-<sequence>.usage`, where the
    owner is the pid and a random token (a restarted container's PID 1 is a new owner), and
    `<owner>.lock` is locked for as long as the journal is open, so a file whose owner's lock
    can be taken belongs to a process that is gone."""

    def __init__(self, directory: Path, segment_bytes: int = SEGMENT_BYTES) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self._segment_bytes = segment_bytes
        self._owner = f"{os.getpid()}-{secrets.token_hex(4)}"
        # Locked under a name `orphans` does not look at, then renamed into place: had the
        # lock file been visible before it was locked, a process starting at the same moment
        # could take it for a gone owner's, remove it, and later replay this live journal.
        unnamed = directory / f".{self._owner}{LOCK_SUFFIX}.new"
        self._lock = os.open(unnamed, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        fcntl.flock(self._lock, fcntl.LOCK_EX)
        os.rename(unnamed, directory / f"{self._owner}{LOCK_SUFFIX}")
        self._sequence = 0
        self._map: mmap.mmap | None = None
        self._fd = -1  # the mapped segment's, kept open for the zeros written ahead
        self._offset = 0
        self._zeroed = 0  # the segment holds written zeros (or lines) up to here
        self._path: Path | None = None
        # Segments filled since the last rotate: they belong to the batch the writer takes next.
        self._filled: list[Path] = []
        self._open_next()

    def _open_next(self) -> None:
        self._sequence += 1
        path = self.directory / f"{self._owner}-{self._sequence:09d}{SUFFIX}"
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            # Reserved now: a full disk is an error here, not a SIGBUS on a later append.
            os.posix_fallocate(fd, 0, self._segment_bytes)
            self._map = mmap.mmap(fd, self._segment_bytes)
        except BaseException:
            os.close(fd)
            path.unlink(missing_ok=True)
            raise
        self._fd, self._path, self._offset, self._zeroed = fd, path, 0, 0

    def _close_current(self) -> list[Path]:
        """Unmap the current segment (if one is open) and cut it to what was written."""
        if self._map is None or self._path is None:
            return []
        self._map.close()
        self._map = None
        try:
            os.ftruncate(self._fd, self._offset)
        except OSError as exc:
            # Handed over all the same (a reader stops at the zeros after the last line): an
            # error here must not stop the ledger's writer with its batch taken.
            log.warning("usage journal segment not cut", file=self._path.name, error=str(exc))
        finally:
            os.close(self._fd)
            self._fd = -1
        return [self._path]

    def append(self, event: UsageEvent) -> None:
        """Write one event; it survives a crash of this process from now on. An OSError (a
        full disk) leaves the journal as it was, and the next append tries again."""
        line = encode(event)
        if self._map is None:
            self._open_next()
        end = self._offset + len(line)
        if end > self._segment_bytes:
            if len(line) > self._segment_bytes:
                raise ValueError("usage event larger than a journal segment")
            self._filled += self._close_current()
            self._open_next()
            end = len(line)
        assert self._map is not None
        while end > self._zeroed:
            size = min(ZEROED_AHEAD, self._segment_bytes - self._zeroed)
            self._zeroed += os.pwrite(self._fd, _ZEROS[:size], self._zeroed)
        self._map[self._offset : end] = line
        self._offset = end

    def rotate(self) -> list[Path]:
        """Close the segments holding everything appended so far and start the next one (or
        leave that to the next append, if the disk refuses it now)."""
        closed = [*self._filled, *self._close_current()]
        self._filled = []
        try:
            self._open_next()
        except OSError as exc:
            log.error("cannot open a usage journal segment", error=str(exc))
        return closed

    def close(self) -> None:
        """Close the current segment (removed if empty) and release the owner's lock."""
        if self._lock < 0:
            return
        written = self._offset
        for path in self._close_current():
            if written == 0:
                path.unlink(missing_ok=True)
        (self.directory / f"{self._owner}{LOCK_SUFFIX}").unlink(missing_ok=True)
        os.close(self._lock)
        self._lock = -1

    def orphans(self) -> list[Path]:
        """Files of processes that are gone (a crash, or a stop that could not commit)."""
        segments: dict[str, list[Path]] = {}
        for path in sorted(self.directory.glob(f"*{SUFFIX}")):
            segments.setdefault(path.name.rsplit("-", 1)[0], []).append(path)
        owners = set(segments) | {p.name.removesuffix(LOCK_SUFFIX) for p in self._locks()}
        found = []
        for owner in sorted(owners - {self._owner}):
            if self._gone(owner):
                found += segments.get(owner, [])
        return found

    def _locks(self) -> list[Path]:
        return list(self.directory.glob(f"*{LOCK_SUFFIX}"))

    def _gone(self, owner: str) -> bool:
        """Whether `owner` stopped; its lock file, once taken, is removed."""
        if owner.isdigit():  # `<pid>`: a segment of a version before owner tokens
            return int(owner) == os.getpid() or not _alive(int(owner))
        path = self.directory / f"{owner}{LOCK_SUFFIX}"
        try:
            fd = os.open(path, os.O_RDWR)
        except FileNotFoundError:
            return True  # closed without committing, or its lock was taken before
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        finally:
            os.close(fd)
        path.unlink(missing_ok=True)
        return True


def read(path: Path) -> Iterator[UsageEvent]:
    """The events of a journal file, skipping a line cut short by a crash."""
    with contextlib.suppress(FileNotFoundError), path.open("rb") as handle:
        for line in handle:
            if line.startswith(b"\0"):  # the unwritten tail of a segment a crash left mapped
                return
            event = decode(line.split(b"\0", 1)[0])
            if event is None:
                log.warning("skipped an unreadable usage journal line", file=path.name)
                continue
            yield event
