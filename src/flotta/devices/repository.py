"""Every query on devices."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from flotta.devices.models import PresenceEvent, Vehicle


class VehicleRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def by_vin(self, vin: str) -> Vehicle | None:
        result = await self.session.execute(select(Vehicle).where(Vehicle.vin == vin))
        return result.scalar_one_or_none()

    async def by_id(self, fleet_id: int) -> Vehicle | None:
        return await self.session.get(Vehicle, fleet_id)

    async def all(self) -> Sequence[Vehicle]:
        result = await self.session.execute(select(Vehicle).order_by(Vehicle.id))
        return result.scalars().all()

    async def owned_by(self, owner_id: int) -> Sequence[Vehicle]:
        result = await self.session.execute(
            select(Vehicle).where(Vehicle.owner_id == owner_id).order_by(Vehicle.id)
        )
        return result.scalars().all()

    async def max_id(self) -> int | None:
        result = await self.session.execute(select(func.max(Vehicle.id)))
        value = result.scalar_one_or_none()
        return int(value) if value is not None else None

    async def add(self, vehicle: Vehicle) -> Vehicle:
        self.session.add(vehicle)
        await self.session.flush()
        return vehicle


class PresenceRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    def add_many(self, events: Sequence[PresenceEvent]) -> None:
        self.session.add_all(events)

    async def for_vehicle(self, vehicle_id: int, limit: int = 100) -> Sequence[PresenceEvent]:
        result = await self.session.execute(
            select(PresenceEvent)
            .where(PresenceEvent.vehicle_id == vehicle_id)
            .order_by(PresenceEvent.at.desc(), PresenceEvent.id.desc())
            .limit(limit)
        )
        return result.scalars().all()
