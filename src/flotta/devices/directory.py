"""Read-mostly cache of accounts and vehicles, so hot paths do not query the database."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from flotta.accounts.models import User
from flotta.accounts.repository import UserRepository
from flotta.clock import Clock
from flotta.devices.models import Vehicle
from flotta.devices.repository import VehicleRepository
from flotta.sharing.repository import DriverRepository


@dataclass(frozen=True, slots=True)
class VehicleRecord:
    id: int
    vehicle_id: int
    vin: str
    owner_id: int
    display_name: str
    model: str
    option_codes: str
    command_signing: str
    credential_hash: str
    config: dict[str, Any] = field(hash=False)

    @classmethod
    def of(cls, row: Vehicle) -> VehicleRecord:
        return cls(
            id=row.id,
            vehicle_id=row.vehicle_id,
            vin=row.vin,
            owner_id=row.owner_id,
            display_name=row.display_name,
            model=row.model,
            option_codes=row.option_codes,
            command_signing=row.command_signing,
            credential_hash=row.credential_hash,
            config=dict(row.config or {}),
        )


@dataclass(frozen=True, slots=True)
class UserRecord:
    id: int
    uuid: str
    email: str
    full_name: str
    region: str

    @classmethod
    def of(cls, row: User) -> UserRecord:
        return cls(row.id, row.uuid, row.email, row.full_name, row.region)


class Directory:
    """Vehicles by VIN and Fleet id, users by token subject; entries expire after `ttl_s`.

    Other processes (`flotta sim`, a second API process) may add records, so entries are
    short-lived; within one process, writers call `forget()`.
    """

    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], clock: Clock, ttl_s: float = 5.0
    ) -> None:
        self._sessions = sessions
        self._clock = clock
        self._ttl = ttl_s
        self._vehicles: dict[str, tuple[float, VehicleRecord | None]] = {}
        self._users: dict[str, tuple[float, UserRecord | None]] = {}
        self._owned: dict[int, tuple[float, list[VehicleRecord]]] = {}
        self._driven: dict[int, tuple[float, frozenset[int]]] = {}

    def _fresh(self, stamp: float) -> bool:
        return self._clock.monotonic() - stamp < self._ttl

    async def vehicle(self, tag: str) -> VehicleRecord | None:
        """Resolve a `{vehicle_tag}`: a 17-character VIN or the numeric Fleet id."""
        hit = self._vehicles.get(tag)
        if hit is not None and self._fresh(hit[0]):
            return hit[1]
        async with self._sessions() as session:
            repo = VehicleRepository(session)
            row = await repo.by_vin(tag) if not tag.isdigit() else None
            if row is None and tag.isdigit() and len(tag) < 20:
                row = await repo.by_id(int(tag))
        record = VehicleRecord.of(row) if row else None
        self._vehicles[tag] = (self._clock.monotonic(), record)
        return record

    async def vehicles_of(self, owner_id: int) -> Sequence[VehicleRecord]:
        hit = self._owned.get(owner_id)
        if hit is not None and self._fresh(hit[0]):
            return hit[1]
        async with self._sessions() as session:
            rows = await VehicleRepository(session).owned_by(owner_id)
        records = [VehicleRecord.of(r) for r in rows]
        self._owned[owner_id] = (self._clock.monotonic(), records)
        return records

    async def driven_by(self, user_id: int) -> frozenset[int]:
        """Fleet ids of vehicles shared with this account as a driver."""
        hit = self._driven.get(user_id)
        if hit is not None and self._fresh(hit[0]):
            return hit[1]
        async with self._sessions() as session:
            ids = frozenset(await DriverRepository(session).driven_vehicle_ids(user_id))
        self._driven[user_id] = (self._clock.monotonic(), ids)
        return ids

    async def visible_to(self, user_id: int) -> list[VehicleRecord]:
        """Owned vehicles first, then those shared with the account, each in id order."""
        records = list(await self.vehicles_of(user_id))
        for fleet_id in sorted(await self.driven_by(user_id)):
            record = await self.vehicle(str(fleet_id))
            if record is not None:
                records.append(record)
        return records

    async def user(self, subject: str) -> UserRecord | None:
        hit = self._users.get(subject)
        if hit is not None and self._fresh(hit[0]):
            return hit[1]
        async with self._sessions() as session:
            row = await UserRepository(session).by_uuid(subject)
        record = UserRecord.of(row) if row else None
        self._users[subject] = (self._clock.monotonic(), record)
        return record

    def forget(self) -> None:
        """Drop every cached entry (after provisioning or deleting records)."""
        self._vehicles.clear()
        self._users.clear()
        self._owned.clear()
        self._driven.clear()
