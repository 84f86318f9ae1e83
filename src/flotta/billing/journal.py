"""The usage journal: each billed request is appended to a local file before its response
leaves, so a crash of the process (SIGKILL included) loses nothing a client saw served, and the
request never waits for a database commit.

One write(2) per event puts it in the kernel's page cache, which outlives the process; like
SQLite's WAL with synchronous=NORMAL, only a power loss can drop the newest lines. The ledger's
writer rotates the file when it takes a batch and deletes the batch's file once the batch is
committed. At start, files left by a process that is gone are replayed into the ledger; the
idempotency keys make a replay of already committed lines harmless.
"""

from __future__ import annotations

import contextlib
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
    """This process's append-only usage files in `directory` (`<pid>-<sequence>.usage`)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self._pid = os.getpid()
        self._sequence = 0
        self._fd = -1
        self._path: Path | None = None
        self._open_next()

    def _open_next(self) -> None:
        self._sequence += 1
        self._path = self.directory / f"{self._pid}-{self._sequence:09d}{SUFFIX}"
        self._fd = os.open(self._path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)

    def append(self, event: UsageEvent) -> None:
        """Write one event; it survives a crash of this process from now on."""
        os.write(self._fd, encode(event))

    def rotate(self) -> Path:
        """Close the current file (everything appended so far) and start the next one."""
        assert self._path is not None
        closed = self._path
        os.close(self._fd)
        self._open_next()
        return closed

    def close(self) -> None:
        """Close the current file; if it is empty, remove it."""
        if self._fd < 0:
            return
        os.close(self._fd)
        self._fd = -1
        if self._path is not None and self._path.stat().st_size == 0:
            self._path.unlink(missing_ok=True)

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
            event = decode(line)
            if event is None:
                log.warning("skipped an unreadable usage journal line", file=path.name)
                continue
            yield event
