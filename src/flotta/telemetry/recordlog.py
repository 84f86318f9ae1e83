"""The durable record log: ingested records committed in groups, read back by cursor or time.

Every streamed record an app is entitled to is one `TelemetryRecordRow`; its id is the cursor
the Fleet API streams resume from and the position sinks deliver through. A group is one
multi-row INSERT. On a SQLite file, groups commit through a connection and thread of the log's
own, one hop from the event loop per group: through the pool, each of the session's five or so
hops waits behind every frame the busy loop has queued, while holding SQLite's write lock.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Row, Select, Table, and_, func, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from flotta.telemetry.envelope import stream_envelope
from flotta.telemetry.models import TelemetryRecordRow
from flotta.telemetry.records import StreamRecord

_TABLE = cast(Table, TelemetryRecordRow.__table__)
# 7 parameters a row, under SQLite's limit of 32,766 per statement.
SQLITE_ROWS_PER_INSERT = 4_000
_COLUMNS = (
    _TABLE.c.id,
    _TABLE.c.client_id,
    _TABLE.c.vin,
    _TABLE.c.topic,
    _TABLE.c.txid,
    _TABLE.c.signals,
    _TABLE.c.created_at,
    _TABLE.c.payload,
)


@dataclass(frozen=True, slots=True)
class NewRecord:
    """A record about to be stored: `envelope` is the frame as the car sent it."""

    client_id: str
    vin: str
    topic: str
    txid: str
    signals: int
    created_at: datetime
    payload: bytes
    envelope: bytes


class RecordLog:
    """Appends records in one transaction per group and reads them back in cursor order."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions
        self._writer = _SQLiteWriter.for_engine(sessions.kw.get("bind"))

    def close(self) -> None:
        """Close the log's own SQLite connection, if it has one (after the last append)."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None  # appends after this go through the pool

    async def append(self, records: Sequence[NewRecord]) -> list[StreamRecord]:
        """Commit the records in one transaction; return them with their cursors, in order."""
        if not records:
            return []
        if self._writer is not None:
            return _stream_records(records, await self._writer.insert(records))
        async with self._sessions() as db, db.begin():
            if db.get_bind().dialect.name == "sqlite":
                ids: list[int] = []
                for start in range(0, len(records), SQLITE_ROWS_PER_INSERT):
                    chunk = records[start : start + SQLITE_ROWS_PER_INSERT]
                    ids += await _insert_sqlite(db, chunk)
            else:
                statement = insert(_TABLE).returning(_TABLE.c.id, sort_by_parameter_order=True)
                rows = [_row(r) for r in records]
                ids = [int(i) for i in (await db.execute(statement, rows)).scalars().all()]
        return _stream_records(records, ids)

    async def after(self, client_id: str, cursor: int, limit: int) -> list[StreamRecord]:
        """The app's records with an id above `cursor`, oldest first, at most `limit`."""
        query = (
            select(*_COLUMNS)
            .where(_TABLE.c.client_id == client_id, _TABLE.c.id > cursor)
            .order_by(_TABLE.c.id)
            .limit(limit)
        )
        return await self._read(query)

    async def between(
        self, client_id: str, start: datetime, end: datetime, after: int, limit: int
    ) -> list[StreamRecord]:
        """The app's records created in [start, end] with an id above `after`, oldest first."""
        query = (
            select(*_COLUMNS)
            .where(
                and_(
                    _TABLE.c.client_id == client_id,
                    _TABLE.c.created_at >= start,
                    _TABLE.c.created_at <= end,
                    _TABLE.c.id > after,
                )
            )
            .order_by(_TABLE.c.id)
            .limit(limit)
        )
        return await self._read(query)

    async def count_between(self, client_id: str, start: datetime, end: datetime) -> int:
        """How many of the app's records were created in [start, end]."""
        query = select(func.count()).where(
            _TABLE.c.client_id == client_id,
            _TABLE.c.created_at >= start,
            _TABLE.c.created_at <= end,
        )
        async with self._sessions() as db:
            return int((await db.execute(query)).scalar_one())

    async def exists(self, client_id: str, vin: str, txid: str) -> bool:
        """Whether this car already delivered a record with this txid for the app."""
        query = (
            select(_TABLE.c.id)
            .where(_TABLE.c.client_id == client_id, _TABLE.c.vin == vin, _TABLE.c.txid == txid)
            .limit(1)
        )
        async with self._sessions() as db:
            return (await db.execute(query)).first() is not None

    async def last_cursor(self) -> int:
        """The newest cursor in the log (0 when empty)."""
        async with self._sessions() as db:
            return int((await db.execute(select(func.max(_TABLE.c.id)))).scalar() or 0)

    async def signal_totals(self) -> dict[str, int]:
        """Exact streamed signals per app, from the log itself (what billing may consume)."""
        query = select(_TABLE.c.client_id, func.sum(_TABLE.c.signals)).group_by(_TABLE.c.client_id)
        async with self._sessions() as db:
            return {str(c): int(n or 0) for c, n in (await db.execute(query)).all()}

    async def _read(self, query: Select[Any]) -> list[StreamRecord]:
        async with self._sessions() as db:
            rows = (await db.execute(query)).all()
        return [_stream_record(row) for row in rows]


async def _insert_sqlite(db: AsyncSession, records: Sequence[NewRecord]) -> list[int]:
    """One multi-row `INSERT ... RETURNING id`: SQLAlchemy would otherwise fall back to a
    statement per row (and a thread hop each, all holding SQLite's only write lock) to return
    ids in order."""
    connection = await db.connection()
    stamp = _TABLE.c.created_at.type.bind_processor(connection.dialect)
    params: list[Any] = []
    for r in records:
        at = stamp(r.created_at) if stamp is not None else r.created_at
        params += (r.client_id, r.vin, r.topic, r.txid, r.signals, at, r.payload)
    values = ",".join(["(?,?,?,?,?,?,?)"] * len(records))
    result = await connection.exec_driver_sql(_INSERT_SQL % values, tuple(params))
    return _in_order([int(i) for i in result.scalars().all()], len(records))


class _SQLiteWriter:
    """A connection of its own to a SQLite file, used from one thread, for group commits."""

    def __init__(self, path: str, stamp: Any) -> None:
        self._path = path
        self._stamp = stamp  # created_at exactly as SQLAlchemy stores it, so queries compare
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="telemetry-record-log")
        self._db: sqlite3.Connection | None = None

    @classmethod
    def for_engine(cls, engine: object) -> _SQLiteWriter | None:
        """A writer for a SQLite file database; None for anything else (in-memory, servers)."""
        if not isinstance(engine, AsyncEngine) or engine.dialect.name != "sqlite":
            return None
        path = engine.url.database
        if not path or path == ":memory:" or path.startswith("file:"):
            return None
        return cls(path, _TABLE.c.created_at.type.bind_processor(engine.dialect))

    async def insert(self, records: Sequence[NewRecord]) -> list[int]:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._insert, records)

    def close(self) -> None:
        self._executor.submit(self._close).result()
        self._executor.shutdown()

    def _insert(self, records: Sequence[NewRecord]) -> list[int]:
        db = self._db or self._open()
        db.execute("BEGIN IMMEDIATE")
        try:
            ids: list[int] = []
            for start in range(0, len(records), SQLITE_ROWS_PER_INSERT):
                chunk = records[start : start + SQLITE_ROWS_PER_INSERT]
                params: list[Any] = []
                for r in chunk:
                    at = self._stamp(r.created_at) if self._stamp else r.created_at
                    params += (r.client_id, r.vin, r.topic, r.txid, r.signals, at, r.payload)
                values = ",".join(["(?,?,?,?,?,?,?)"] * len(chunk))
                rows = db.execute(_INSERT_SQL % values, params).fetchall()
                ids += _in_order([int(row[0]) for row in rows], len(chunk))
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        return ids

    def _open(self) -> sqlite3.Connection:
        # Autocommit mode: the transaction is exactly the BEGIN ... COMMIT above.
        db = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
        for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "foreign_keys=ON"):
            db.execute(f"PRAGMA {pragma}")  # as flotta.db.engine sets up every connection
        db.execute("PRAGMA busy_timeout=5000")
        self._db = db
        return db

    def _close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None


def _in_order(ids: list[int], count: int) -> list[int]:
    """The ids a multi-row INSERT returned, in VALUES order.

    SQLite assigns an INTEGER PRIMARY KEY max(rowid) + 1 row by row, in VALUES order, while
    the transaction holds the only write lock: consecutive ids are the rows in order."""
    ids.sort()
    if len(ids) != count or ids[-1] - ids[0] != count - 1:
        raise RuntimeError("telemetry record ids are not consecutive; refusing to guess cursors")
    return ids


def _stream_records(records: Sequence[NewRecord], ids: Sequence[int]) -> list[StreamRecord]:
    return [
        StreamRecord(
            cursor=cursor,
            client_id=r.client_id,
            vin=r.vin,
            topic=r.topic,
            txid=r.txid,
            created_at=r.created_at,
            signals=r.signals,
            payload=r.payload,
            envelope=r.envelope,
        )
        for cursor, r in zip(ids, records, strict=True)
    ]


def _row(r: NewRecord) -> dict[str, Any]:
    return {
        "client_id": r.client_id,
        "vin": r.vin,
        "topic": r.topic,
        "txid": r.txid,
        "signals": r.signals,
        "created_at": r.created_at,
        "payload": r.payload,
    }


_INSERT_SQL = (
    "INSERT INTO telemetry_records (client_id, vin, topic, txid, signals, created_at, payload) "
    "VALUES %s RETURNING id"
)


def _stream_record(row: Row[Any]) -> StreamRecord:
    """A stored row as a StreamRecord, its envelope rebuilt as the car would have framed it."""
    created_at: datetime = row.created_at
    topic: str = row.topic
    txid: str = row.txid
    vin: str = row.vin
    payload: bytes = row.payload
    envelope = stream_envelope(
        topic, payload, vin=vin, created_at_s=created_at.timestamp(), txid=txid.encode()
    )
    return StreamRecord(
        cursor=int(row.id),
        client_id=str(row.client_id),
        vin=vin,
        topic=topic,
        txid=txid,
        created_at=created_at,
        signals=int(row.signals),
        payload=payload,
        envelope=envelope,
    )
