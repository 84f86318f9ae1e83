"""Provisioning: owners and vehicles with their device credentials. Callers own the commit."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from flotta.accounts.models import User
from flotta.accounts.repository import UserRepository
from flotta.clock import Clock
from flotta.devices.credentials import hash_credential, new_credential
from flotta.devices.models import Vehicle
from flotta.devices.repository import VehicleRepository
from flotta.errors import InvalidRequest

# Fleet ids look like Tesla's: large integers, distinct from the internal vehicle_id.
FLEET_ID_BASE = 1_492_931_000_000_000
VEHICLE_ID_OFFSET = 1_000_000_000


@dataclass(frozen=True, slots=True)
class ProvisionedVehicle:
    vehicle: Vehicle
    credential: str


async def ensure_owner(session: AsyncSession, email: str, full_name: str, clock: Clock) -> User:
    """Return the account with this e-mail, creating it if needed."""
    repo = UserRepository(session)
    user = await repo.by_email(email)
    if user is None:
        user = await repo.add(
            User(email=email.lower(), full_name=full_name, created_at=clock.now())
        )
    return user


async def provision_vehicle(
    session: AsyncSession,
    *,
    owner: User,
    vin: str,
    model: str,
    display_name: str,
    option_codes: str,
    config: dict[str, Any],
    secret_key: str,
    clock: Clock,
) -> ProvisionedVehicle:
    """Register a vehicle and issue its gateway credential (shown once, stored hashed)."""
    if len(vin) != 17 or not vin.isalnum() or vin.upper() != vin:
        raise InvalidRequest(f"invalid vin param: {vin!r} is not a 17-character VIN")
    repo = VehicleRepository(session)
    if await repo.by_vin(vin) is not None:
        raise InvalidRequest(f"vehicle {vin} is already provisioned")
    fleet_id = (await repo.max_id() or FLEET_ID_BASE) + 1
    credential = new_credential(vin)
    vehicle = Vehicle(
        id=fleet_id,
        vehicle_id=fleet_id - FLEET_ID_BASE + VEHICLE_ID_OFFSET,
        vin=vin,
        owner_id=owner.id,
        display_name=display_name,
        model=model,
        option_codes=option_codes,
        credential_hash=hash_credential(secret_key, credential),
        command_signing="allowed",
        config=config,
        created_at=clock.now(),
    )
    await repo.add(vehicle)
    return ProvisionedVehicle(vehicle, credential)
