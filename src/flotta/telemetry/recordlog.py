"""The durable record log: ingested records committed in groups, read back by cursor or time.

Every streamed record an app is entitled to is one `TelemetryRecordRow`; its id is the cursor
the Fleet API streams resume from and the position sinks deliver through. Inserts go through
one Core `executemany` per group, like the usage ledger (`flotta.billing.ledger`): compiled
once and cached, so a batch costs little more than its rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Row, Select, Table, and_, func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from flotta.telemetry.envelope import stream_envelope
from flotta.telemetry.models import TelemetryRecordRow
from flotta.telemetry.records import StreamRecord

_TABLE = cast(Table, TelemetryRecordRow.__table__)
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

    async def append(self, records: Sequence[NewRecord]) -> list[StreamRecord]:
        """Commit the records in one transaction; return them with their cursors, in order."""
        if not records:
            return []
        rows = [
            {
                "client_id": r.client_id,
                "vin": r.vin,
                "topic": r.topic,
                "txid": r.txid,
                "signals": r.signals,
                "created_at": r.created_at,
                "payload": r.payload,
            }
            for r in records
        ]
        statement = insert(_TABLE).returning(_TABLE.c.id, sort_by_parameter_order=True)
        async with self._sessions() as db, db.begin():
            ids = list((await db.execute(statement, rows)).scalars().all())
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
