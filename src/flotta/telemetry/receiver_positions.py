"""Where each config's receiver stands in the record log (`telemetry_receivers`).

A config's receiver starts with the records streamed since the config last changed: records
of the same app and car from before belong to an earlier config (or none). Once a row exists,
its position only moves forward, and the row goes with its config.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Table, and_, exists, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from flotta.clock import Clock
from flotta.telemetry.delivery_models import TelemetryReceiverRow
from flotta.telemetry.entitlements import ConfigRef
from flotta.telemetry.models import TelemetryConfigRow, TelemetryRecordGroupRow

# The record log stores a group of consecutive cursors per app, car and ingest batch.
_GROUPS = cast(Table, TelemetryRecordGroupRow.__table__)
_RECEIVERS = cast(Table, TelemetryReceiverRow.__table__)


async def start_position(
    sessions: async_sessionmaker[AsyncSession], ref: ConfigRef, clock: Clock
) -> int:
    """The config receiver's stored position, stored first if it has none yet."""
    async with sessions() as db:
        row = await db.get(TelemetryReceiverRow, ref.id)
        if row is not None:
            return row.delivered_through
        config = await db.get(TelemetryConfigRow, ref.id)
        if config is None:
            return 0  # deleted meanwhile: the lane finds out and ends
        before = (
            select(_GROUPS.c.last_cursor)
            .where(
                _GROUPS.c.client_id == ref.client_id,
                _GROUPS.c.vin == ref.vin,
                _GROUPS.c.created_at < config.updated_at,
            )
            .order_by(_GROUPS.c.last_cursor.desc())
            .limit(1)
        )
        position = int((await db.execute(before)).scalar() or 0)
        db.add(
            TelemetryReceiverRow(
                config_id=ref.id,
                client_id=ref.client_id,
                vin=ref.vin,
                delivered_through=position,
                updated_at=clock.now(),
            )
        )
        try:
            await db.commit()
        except IntegrityError:  # stored by a previous holder meanwhile, or the config is gone
            await db.rollback()
            row = await db.get(TelemetryReceiverRow, ref.id)
            return row.delivered_through if row is not None else 0
    return position


@dataclass(frozen=True, slots=True)
class Recovered:
    """The app's receivers as stored: positions, and the cars with records after theirs."""

    positions: dict[int, int]  # config id -> delivered through, for configs with a receiver
    pending: list[str]  # VINs


def names_receiver(config: dict[str, Any] | None) -> bool:
    """Whether a stored config names a receiver (hostname and port) to stream to."""
    return bool(config and config.get("hostname") and config.get("port"))


async def receiver_configs(
    sessions: async_sessionmaker[AsyncSession], client_id: str
) -> list[TelemetryConfigRow]:
    """The app's configs that name a receiver (hostname and port)."""
    query = select(TelemetryConfigRow).where(TelemetryConfigRow.client_id == client_id)
    async with sessions() as db:
        configs = (await db.scalars(query)).all()
    return [c for c in configs if names_receiver(c.config)]


async def recover(
    sessions: async_sessionmaker[AsyncSession],
    client_id: str,
    receivers: list[TelemetryConfigRow],
    clock: Clock,
) -> Recovered:
    """The positions of the app's `receivers`, and the cars with records after theirs (after
    a restart or a takeover). Configs that never had a position get one first."""
    async with sessions() as db:
        query = select(TelemetryReceiverRow).where(TelemetryReceiverRow.client_id == client_id)
        stored = {row.config_id: row.delivered_through for row in await db.scalars(query)}
    for config in receivers:
        if config.id not in stored:
            ref = ConfigRef(config.id, client_id, config.vin, "", 0, None)
            stored[config.id] = await start_position(sessions, ref, clock)
    newer = exists().where(
        and_(
            _GROUPS.c.client_id == _RECEIVERS.c.client_id,
            _GROUPS.c.vin == _RECEIVERS.c.vin,
            _GROUPS.c.last_cursor > _RECEIVERS.c.delivered_through,
        )
    )
    pending_query = select(_RECEIVERS.c.vin).where(_RECEIVERS.c.client_id == client_id, newer)
    async with sessions() as db:
        pending = [str(vin) for vin in (await db.execute(pending_query)).scalars().all()]
    return Recovered({c.id: stored[c.id] for c in receivers}, pending)
