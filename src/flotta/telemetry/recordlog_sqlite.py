"""The record log's own writer on a SQLite file: a connection and a thread of its own.

Through the pool, each of a session's hops would wait behind every frame the busy event loop
has queued, while holding SQLite's only write lock. Here the loop encodes each batch's rows and
hands them over; the thread commits everything handed to it since its last commit in one
statement, so it is never idle while batches wait, and needs the GIL (which it may wait for up
to the interpreter's switch interval each time, behind the busy loop) only a few times per
commit: a BEGIN, a SELECT, a step per row and a COMMIT made a commit take 10-20 ms under load.
"""

from __future__ import annotations

import asyncio
import queue
import sqlite3
import threading
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncEngine

from flotta.telemetry.record_groups import ROW_COLUMNS, NewGroup, group_row

NEWEST_SQL = "SELECT last_cursor FROM telemetry_record_groups ORDER BY first_cursor DESC LIMIT 1"
_COLUMNS = ", ".join(ROW_COLUMNS)
_ROW_VALUES = f"({', '.join('?' * len(ROW_COLUMNS))})"
_INSERT_SQL = f"INSERT INTO telemetry_record_groups ({_COLUMNS}) VALUES {_ROW_VALUES}"
# Inserts the rows (%s: their VALUES) only if the newest stored cursor is the last parameter:
# another writer in between (another process on the file) costs a retry, never a cursor twice.
_INSERT_IF_NEWEST = (
    f"INSERT INTO telemetry_record_groups ({_COLUMNS}) "
    f"SELECT * FROM (VALUES %s) WHERE coalesce(({NEWEST_SQL}), 0) = ?"
)
# SQLite takes at most 32,766 parameters in a statement.
_ROWS_PER_STATEMENT = 32_766 // len(ROW_COLUMNS) - 1

_Job = tuple[list[tuple[Any, ...]], asyncio.Future[list[int]], asyncio.AbstractEventLoop]


class SQLiteWriter:
    """Commits groups of records to a SQLite file from a thread of its own."""

    def __init__(self, path: str, stamp: Any) -> None:
        self._path = path
        self._stamp = stamp  # created_at exactly as SQLAlchemy stores it, so queries compare
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._db: sqlite3.Connection | None = None
        self._newest: int | None = None  # the newest cursor this thread knows is stored

    @classmethod
    def for_engine(cls, engine: object, table: Table) -> SQLiteWriter | None:
        """A writer for a SQLite file database; None for anything else (in-memory, servers)."""
        if not isinstance(engine, AsyncEngine) or engine.dialect.name != "sqlite":
            return None
        path = engine.url.database
        if not path or path == ":memory:" or path.startswith("file:"):
            return None
        created_at = table.c.created_at.type.dialect_impl(engine.dialect)
        return cls(path, created_at.bind_processor(engine.dialect))

    def submit(self, groups: Sequence[NewGroup], created_at: datetime) -> asyncio.Future[list[int]]:
        """Hand the groups to the thread now; the future gives their first cursors, in order."""
        at = self._stamp(created_at) if self._stamp is not None else created_at
        rows = [group_row(group, 0, at) for group in groups]  # cursors are given in the thread
        loop = asyncio.get_running_loop()
        done: asyncio.Future[list[int]] = loop.create_future()
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name="telemetry-record-log", daemon=True
            )
            self._thread.start()
        self._jobs.put((rows, done, loop))
        return done

    def close(self) -> None:
        """Commit what was handed over, then stop the thread and close the connection."""
        if self._thread is not None:
            self._jobs.put(None)
            self._thread.join()
            self._thread = None

    def _run(self) -> None:
        try:
            while (job := self._jobs.get()) is not None:
                jobs = [job]
                stop = False
                while not self._jobs.empty():  # everything handed over meanwhile: one commit
                    more = self._jobs.get()
                    if more is None:
                        stop = True
                        break
                    jobs.append(more)
                self._commit(jobs)
                if stop:
                    return
        finally:
            if self._db is not None:
                self._db.close()
                self._db = None

    def _commit(self, jobs: list[_Job]) -> None:
        rows = [row for job in jobs for row in job[0]]
        try:
            firsts: list[int] | BaseException = self._insert(rows)
        except Exception as exc:  # every job of the commit fails: nothing of it is stored
            firsts = exc
        at = 0
        for job_rows, done, loop in jobs:
            try:
                if isinstance(firsts, BaseException):
                    loop.call_soon_threadsafe(_fail, done, firsts)
                else:
                    loop.call_soon_threadsafe(_succeed, done, firsts[at : at + len(job_rows)])
            except RuntimeError:  # that loop is closed: nobody waits for the answer any more
                pass
            at += len(job_rows)

    def _insert(self, rows: list[tuple[Any, ...]]) -> list[int]:
        """Commit rows whose cursors are still to be given: after the newest stored one."""
        db = self._db or self._open()
        if self._newest is None:
            self._newest = newest_cursor(db)
        while True:
            placed, firsts, newest = place(rows, self._newest)
            if len(placed) > _ROWS_PER_STATEMENT:
                return self._insert_many(db, rows)
            values = ", ".join([_ROW_VALUES] * len(placed))
            params = [value for row in placed for value in row]
            inserted = db.execute(_INSERT_IF_NEWEST % values, [*params, self._newest]).rowcount
            if inserted == len(placed):
                self._newest = newest
                return firsts
            self._newest = newest_cursor(db)  # someone else wrote: continue after them

    def _insert_many(self, db: sqlite3.Connection, rows: list[tuple[Any, ...]]) -> list[int]:
        """More rows than a statement takes: the write lock first, then the newest cursor."""
        db.execute("BEGIN IMMEDIATE")
        try:
            placed, firsts, newest = place(rows, newest_cursor(db))
            db.executemany(_INSERT_SQL, placed)
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        self._newest = newest
        return firsts

    def _open(self) -> sqlite3.Connection:
        # Autocommit mode: a statement is its own transaction, or BEGIN ... COMMIT above.
        db = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
        for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "foreign_keys=ON"):
            db.execute(f"PRAGMA {pragma}")  # as flotta.db.engine sets up every connection
        db.execute("PRAGMA busy_timeout=5000")
        self._db = db
        return db


def newest_cursor(db: sqlite3.Connection) -> int:
    row = db.execute(NEWEST_SQL).fetchone()
    return int(row[0]) if row else 0


def place(
    rows: Sequence[tuple[Any, ...]], newest: int
) -> tuple[list[tuple[Any, ...]], list[int], int]:
    """Rows (`group_row` order) given their cursors after `newest`: the rows, each one's
    first cursor, and the newest cursor after them."""
    placed: list[tuple[Any, ...]] = []
    firsts: list[int] = []
    for row in rows:
        records = row[4]
        firsts.append(newest + 1)
        placed.append((newest + 1, newest + records, *row[2:]))
        newest += records
    return placed, firsts, newest


def _succeed(done: asyncio.Future[list[int]], firsts: list[int]) -> None:
    if not done.done():
        done.set_result(firsts)


def _fail(done: asyncio.Future[list[int]], error: BaseException) -> None:
    if not done.done():
        done.set_exception(error)
