"""A vehicle changing hands or leaving the platform, and what goes with it (issue 5).

Transferred (sold): the previous owner's drivers and pending invitations go, and every
streaming config on the car is removed, whoever set it up: the new owner consented to none of
them. Paired virtual keys stay on the car, as they do on a real one until removed. Deleted: the
vehicle and everything recorded for it go, its configs first so the cars can be told.
Services never commit; once the caller has, it tells the cars (`stop_streams`).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from flotta.accounts.models import User
from flotta.devices.models import Vehicle
from flotta.errors import InvalidRequest
from flotta.sharing.repository import DriverRepository, InvitationRepository
from flotta.telemetry.repository import TelemetryRepository
from flotta.telemetry.service import ConfigState


async def transfer_vehicle(
    session: AsyncSession, vehicle: Vehicle, new_owner: User, now: datetime
) -> list[ConfigState]:
    """Give the vehicle to `new_owner`; returns the streaming configs removed with it."""
    if new_owner.id == vehicle.owner_id:
        raise InvalidRequest(f"{new_owner.email} already owns {vehicle.vin}")
    await DriverRepository(session).remove_all(vehicle.id)
    await InvitationRepository(session).revoke_pending(vehicle.id, now)
    vehicle.owner_id = new_owner.id
    removed = await _remove_configs(session, vehicle.vin)
    await session.flush()
    return removed


async def delete_vehicle(session: AsyncSession, vehicle: Vehicle) -> list[ConfigState]:
    """Remove the vehicle (its drivers, invitations and history cascade); returns its configs."""
    removed = await _remove_configs(session, vehicle.vin)
    await session.delete(vehicle)
    await session.flush()
    return removed


async def _remove_configs(session: AsyncSession, vin: str) -> list[ConfigState]:
    repo = TelemetryRepository(session)
    removed: list[ConfigState] = []
    for row in await repo.configs_on(vin):
        removed.append(ConfigState.of(row))
        await repo.remove(row)
    return removed
