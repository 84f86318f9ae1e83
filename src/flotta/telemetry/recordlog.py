"""The durable record log: ingested records committed in groups, read back by cursor or time.

Every streamed record an app is entitled to has a cursor: what the Fleet API streams resume
from and sinks and receivers deliver through. Records are stored a group per app, car and
ingest batch (`flotta.telemetry.record_groups`); a group holds the consecutive cursors
`first_cursor`..`last_cursor`. Cursors are handed out inside the committing transaction, after
the newest group's, so they become visible in increasing order: on SQLite the transaction
holds the only write lock, on PostgreSQL a transaction-scoped advisory lock.

On a SQLite file, groups commit through a connection and thread of the log's own
(`recordlog_sqlite`); elsewhere through the pool.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Select, Table, and_, func, insert, or_, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from flotta.telemetry.models import TelemetryRecordGroupRow
from flotta.telemetry.record_groups import (
    ROW_COLUMNS,
    NewGroup,
    StoredGroup,
    expand,
    group_row,
    txid_needle,
)
from flotta.telemetry.recordlog_sqlite import NEWEST_SQL, SQLiteWriter
from flotta.telemetry.records import StreamRecord

_TABLE = cast(Table, TelemetryRecordGroupRow.__table__)
_READ = (
    _TABLE.c.first_cursor,
    _TABLE.c.client_id,
    _TABLE.c.vin,
    _TABLE.c.created_at,
    _TABLE.c.txids,
    _TABLE.c.body,
)
# Groups read per query while collecting a page of records.
GROUPS_PER_READ = 32
# Txids looked for per query when checking resends against the log.
TXIDS_PER_LOOKUP = 50
# PostgreSQL: the transaction-scoped advisory lock that orders record-log commits ("FLOTTA").
COMMIT_ORDER_LOCK = 0x464C4F545441


class RecordLog:
    """Appends groups of records in one transaction per batch and reads them in cursor order."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions
        self._writer = SQLiteWriter.for_engine(sessions.kw.get("bind"), _TABLE)
        # Appends through the pool read the newest cursor, then insert: one at a time here
        # (other processes wait on PostgreSQL's advisory lock).
        self._appending = asyncio.Lock()

    def close(self) -> None:
        """Close the log's own SQLite connection, if it has one (after the last append)."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None  # appends after this go through the pool

    def commit(self, groups: Sequence[NewGroup], created_at: datetime) -> asyncio.Future[list[int]]:
        """Start committing the groups in one transaction now; the future gives each group's
        first cursor, in order. (On a SQLite file the work is handed to the log's thread at
        once, so the caller can do other work meanwhile.)"""
        if not groups:
            done: asyncio.Future[list[int]] = asyncio.get_running_loop().create_future()
            done.set_result([])
            return done
        if self._writer is not None:
            return self._writer.submit(groups, created_at)
        return asyncio.ensure_future(self._append_pooled(groups, created_at))

    async def _append_pooled(self, groups: Sequence[NewGroup], created_at: datetime) -> list[int]:
        async with self._appending, self._sessions() as db, db.begin():
            if db.get_bind().dialect.name == "postgresql":
                await db.execute(select(func.pg_advisory_xact_lock(COMMIT_ORDER_LOCK)))
            newest = (await db.execute(text(NEWEST_SQL))).scalar()
            firsts = _first_cursors(int(newest or 0), groups)
            rows = [
                dict(zip(ROW_COLUMNS, group_row(g, first, created_at), strict=True))
                for g, first in zip(groups, firsts, strict=True)
            ]
            await db.execute(insert(_TABLE), rows)
        return firsts

    async def after(self, client_id: str, cursor: int, limit: int) -> list[StreamRecord]:
        """The app's records with a cursor above `cursor`, oldest first, at most `limit`."""
        return await self._collect(_TABLE.c.client_id == client_id, cursor, limit)

    async def car_records(
        self, client_id: str, vin: str, after: int, limit: int
    ) -> list[StreamRecord]:
        """One car's records for one app with a cursor above `after`, oldest first."""
        where = and_(_TABLE.c.client_id == client_id, _TABLE.c.vin == vin)
        return await self._collect(where, after, limit)

    async def between(
        self, client_id: str, start: datetime, end: datetime, after: int, limit: int
    ) -> list[StreamRecord]:
        """The app's records created in [start, end] with a cursor above `after`, oldest
        first."""
        where = and_(
            _TABLE.c.client_id == client_id,
            _TABLE.c.created_at >= start,
            _TABLE.c.created_at <= end,
        )
        return await self._collect(where, after, limit)

    async def count_between(self, client_id: str, start: datetime, end: datetime) -> dict[str, int]:
        """How many of the app's records were created in [start, end], per VIN."""
        query = (
            select(_TABLE.c.vin, func.sum(_TABLE.c.records))
            .where(
                _TABLE.c.client_id == client_id,
                _TABLE.c.created_at >= start,
                _TABLE.c.created_at <= end,
            )
            .group_by(_TABLE.c.vin)
        )
        async with self._sessions() as db:
            return {vin: int(count) for vin, count in (await db.execute(query)).all()}

    async def find_txids(
        self, client_id: str, vin: str, txids: Collection[str]
    ) -> dict[str, StoredGroup]:
        """The groups holding the records this car already delivered with these txids for
        the app, by txid (resends after a restart)."""
        found: dict[str, StoredGroup] = {}
        wanted = list(dict.fromkeys(txids))
        async with self._sessions() as db:
            contains = func.strpos if db.get_bind().dialect.name == "postgresql" else func.instr
            for start in range(0, len(wanted), TXIDS_PER_LOOKUP):
                chunk = wanted[start : start + TXIDS_PER_LOOKUP]
                needles = [txid_needle(txid) for txid in chunk]
                query = select(
                    _TABLE.c.first_cursor,
                    _TABLE.c.last_cursor,
                    _TABLE.c.signals,
                    _TABLE.c.created_at,
                    _TABLE.c.txids,
                ).where(
                    _TABLE.c.client_id == client_id,
                    _TABLE.c.vin == vin,
                    or_(*(contains(_TABLE.c.txids, needle) > 0 for needle in needles)),
                )
                for first, last, signals, created_at, stored in (await db.execute(query)).all():
                    group = StoredGroup(first, last, client_id, vin, signals, created_at)
                    for txid, needle in zip(chunk, needles, strict=True):
                        if needle in stored:
                            found.setdefault(txid, group)
        return found

    async def last_cursor(self) -> int:
        """The newest cursor in the log (0 when empty)."""
        async with self._sessions() as db:
            return int((await db.execute(text(NEWEST_SQL))).scalar() or 0)

    async def signal_totals(self) -> dict[str, int]:
        """Exact streamed signals per app, from the log itself (what billing may consume)."""
        query = select(_TABLE.c.client_id, func.sum(_TABLE.c.signals)).group_by(_TABLE.c.client_id)
        async with self._sessions() as db:
            return {str(c): int(n or 0) for c, n in (await db.execute(query)).all()}

    async def _collect(self, where: Any, after: int, limit: int) -> list[StreamRecord]:
        return await _collect(self._sessions, where, after, limit)


async def _collect(
    sessions: async_sessionmaker[AsyncSession], where: Any, after: int, limit: int
) -> list[StreamRecord]:
    """Records of the groups matching `where`, cursors above `after`, at most `limit`."""
    records: list[StreamRecord] = []
    async with sessions() as db:
        while len(records) < limit:
            rows = (await db.execute(_page(where, after))).all()
            for first, client_id, vin, created_at, txids, body in rows:
                left = limit - len(records)
                records += expand(first, client_id, vin, created_at, txids, body, after, left)
                if len(records) >= limit:
                    break
            if len(rows) < GROUPS_PER_READ:
                break
            after = records[-1].cursor
    return records[:limit]


def _page(where: Any, after: int) -> Select[Any]:
    return (
        select(*_READ)
        .where(where, _TABLE.c.last_cursor > after)
        .order_by(_TABLE.c.last_cursor)
        .limit(GROUPS_PER_READ)
    )


def _first_cursors(newest: int, groups: Sequence[NewGroup]) -> list[int]:
    """Each group's first cursor, right after the newest stored one and each other."""
    firsts: list[int] = []
    for group in groups:
        firsts.append(newest + 1)
        newest += len(group)
    return firsts
