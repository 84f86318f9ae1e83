"""Every query on invitations and drivers."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from flotta.accounts.models import User
from flotta.db.chunks import chunked
from flotta.devices.models import Vehicle
from flotta.sharing.models import Driver, Invitation


class InvitationRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, invitation: Invitation) -> Invitation:
        self.session.add(invitation)
        await self.session.flush()
        return invitation

    async def get(self, vehicle_id: int, invitation_id: int) -> Invitation | None:
        result = await self.session.execute(
            select(Invitation).where(
                Invitation.id == invitation_id, Invitation.vehicle_id == vehicle_id
            )
        )
        return result.scalar_one_or_none()

    async def by_code(self, code: str) -> Invitation | None:
        result = await self.session.execute(select(Invitation).where(Invitation.code == code))
        return result.scalar_one_or_none()

    async def revoke_pending(self, vehicle_id: int, now: datetime) -> int:
        """Revoke the vehicle's unredeemed invitations; how many there were."""
        result = await self.session.execute(
            update(Invitation)
            .where(Invitation.vehicle_id == vehicle_id, Invitation.state == "pending")
            .values(state="revoked", revoked_at=now)
        )
        return int(getattr(result, "rowcount", 0) or 0)

    async def for_vehicle(self, vehicle_id: int, limit: int) -> Sequence[Invitation]:
        result = await self.session.execute(
            select(Invitation)
            .where(Invitation.vehicle_id == vehicle_id)
            .order_by(Invitation.created_at.desc(), Invitation.id.desc())
            .limit(limit)
        )
        return result.scalars().all()


class DriverRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, driver: Driver) -> Driver:
        self.session.add(driver)
        await self.session.flush()
        return driver

    async def count(self, vehicle_id: int) -> int:
        result = await self.session.execute(
            select(func.count()).select_from(Driver).where(Driver.vehicle_id == vehicle_id)
        )
        return int(result.scalar_one())

    async def exists(self, vehicle_id: int, user_id: int) -> bool:
        result = await self.session.execute(
            select(Driver.id).where(Driver.vehicle_id == vehicle_id, Driver.user_id == user_id)
        )
        return result.first() is not None

    async def with_users(self, vehicle_id: int) -> Sequence[tuple[Driver, User]]:
        result = await self.session.execute(
            select(Driver, User)
            .join(User, User.id == Driver.user_id)
            .where(Driver.vehicle_id == vehicle_id)
            .order_by(Driver.created_at, Driver.id)
        )
        return [(d, u) for d, u in result.all()]

    async def remove(self, vehicle_id: int, user_id: int) -> bool:
        result = await self.session.execute(
            delete(Driver).where(Driver.vehicle_id == vehicle_id, Driver.user_id == user_id)
        )
        return bool(getattr(result, "rowcount", 0))

    async def remove_all(self, vehicle_id: int) -> int:
        """Remove every driver of the vehicle; how many there were."""
        result = await self.session.execute(delete(Driver).where(Driver.vehicle_id == vehicle_id))
        return int(getattr(result, "rowcount", 0) or 0)

    async def driver_ids(self, vehicle_id: int) -> set[int]:
        """The accounts the vehicle is shared with as drivers."""
        result = await self.session.execute(
            select(Driver.user_id).where(Driver.vehicle_id == vehicle_id)
        )
        return {int(v) for v in result.scalars().all()}

    async def drivers_by_vehicle(self, vehicle_ids: set[int]) -> dict[int, set[int]]:
        """`driver_ids` of several vehicles, a query per few thousand of them (a vehicle without
        drivers is absent)."""
        drivers: dict[int, set[int]] = {}
        for chunk in chunked(vehicle_ids):
            result = await self.session.execute(
                select(Driver.vehicle_id, Driver.user_id).where(Driver.vehicle_id.in_(chunk))
            )
            for vehicle_id, user_id in result.all():
                drivers.setdefault(int(vehicle_id), set()).add(int(user_id))
        return drivers

    async def driven_vehicle_ids(self, user_id: int) -> set[int]:
        """Vehicles shared with this account as a driver."""
        result = await self.session.execute(
            select(Driver.vehicle_id).where(Driver.user_id == user_id)
        )
        return {int(v) for v in result.scalars().all()}

    async def vehicle_ids_of(self, user_id: int) -> set[int]:
        """Vehicles this account owns or drives."""
        owned = select(Vehicle.id).where(Vehicle.owner_id == user_id)
        driven = select(Driver.vehicle_id).where(Driver.user_id == user_id)
        result = await self.session.execute(owned.union(driven))
        return {int(v) for v in result.scalars().all()}
