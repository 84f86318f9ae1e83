"""The usage journal: each billed request is appended to a local file before its response
leaves, so a crash of the process (SIGKILL included) loses nothing a client saw served, and the
request never waits for a database commit.

Each file is a fixed-size segment mapped into memory (MAP_SHARED): an append is a copy into the
kernel's page cache, which outlives the process, with no system call and no release of the GIL
on the request path (a write(2) per request let the ledger's thread take the GIL and made every
request wait for it). Like SQLite's WAL with synchronous=NORMAL, only a power loss can drop the
newest lines. The unwritten tail of a segment is zeros, so a reader stops at the first NUL.

The ledger's writer rotates the journal when it takes a batch and deletes the batch's files once
the batch is committed. At start, files left by a process that is gone are replayed into the
ledger; the idempotency keys make a replay of already committed lines harmless.
"""

from __future__ import annotations

import contextlib
import mmap
import os
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import orjson
import structlog

from flotta.billing.categories import Category
from flotta.billing.events import UsageEvent

log = structlog.get_logger(__name__)

SUFFIX = ".usage"
# One segment holds about 25,000 events; a busier second simply opens the next segment.
SEGMENT_BYTES = 4 << 20


def encode(event: UsageEvent) -> bytes:
    """One JSON line; orjson writes the aware datetime as RFC 3339 itself (in C, on the hot
    path)."""
    fields = (
        event.key,
        event.account_id,
        event.client_id,
        event.device,
        event.category.value,
        event.quantity,
        event.occurred_at,
        event.status,
    )
    return orjson.dumps(fields, option=orjson.OPT_APPEND_NEWLINE)


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
    """This process's usage segments in `directory` (`<pid>-<sequence>.usage`)."""

    def __init__(self, directory: Path, segment_bytes: int = SEGMENT_BYTES) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self._segment_bytes = segment_bytes
        self._pid = os.getpid()
        self._sequence = 0
        self._map: mmap.mmap | None = None
        self._offset = 0
        self._path: Path | None = None
        # Segments filled since the last rotate: they belong to the batch the writer takes next.
        self._filled: list[Path] = []
        self._open_next()

    def _open_next(self) -> None:
        self._sequence += 1
        self._path = self.directory / f"{self._pid}-{self._sequence:09d}{SUFFIX}"
        fd = os.open(self._path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.ftruncate(fd, self._segment_bytes)  # sparse: disk is used as lines arrive
            self._map = mmap.mmap(fd, self._segment_bytes)
        finally:
            os.close(fd)
        self._offset = 0

    def _close_current(self) -> Path:
        """Unmap the current segment and cut it to what was written."""
        assert self._map is not None and self._path is not None
        self._map.close()
        self._map = None
        os.truncate(self._path, self._offset)
        return self._path

    def append(self, event: UsageEvent) -> None:
        """Write one event; it survives a crash of this process from now on."""
        line = encode(event)
        end = self._offset + len(line)
        if end > self._segment_bytes:
            if len(line) > self._segment_bytes:
                raise ValueError("usage event larger than a journal segment")
            self._filled.append(self._close_current())
            self._open_next()
            end = len(line)
        assert self._map is not None
        self._map[self._offset : end] = line
        self._offset = end

    def rotate(self) -> list[Path]:
        """Close the segments holding everything appended so far and start the next one."""
        closed = [*self._filled, self._close_current()]
        self._filled = []
        self._open_next()
        return closed

    def close(self) -> None:
        """Close the current segment; if it is empty, remove it."""
        if self._map is None:
            return
        path = self._close_current()
        if self._offset == 0:
            path.unlink(missing_ok=True)

    def orphans(self) -> list[Path]:
        """Files of processes that are gone (a crash, or a stop that could not commit)."""
        found = []
        for path in sorted(self.directory.glob(f"*{SUFFIX}")):
            pid_text = path.name.split("-", 1)[0]
            pid = int(pid_text) if pid_text.isdigit() else 0
            if pid != self._pid and not _alive(pid):
                found.append(path)
        return found


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
