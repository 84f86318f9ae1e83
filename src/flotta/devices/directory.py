"""Read-mostly cache of accounts, vehicles, apps and consent, so hot paths skip the database."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from flotta.accounts.models import User
from flotta.accounts.repository import UserRepository
from flotta.caching import ExpiringCache
from flotta.clock import Clock
from flotta.devices.models import Vehicle
from flotta.devices.repository import VehicleRepository
from flotta.oauth.consent import vehicle_ids
from flotta.oauth.models import ConsentGrant, OAuthClient, as_list
from flotta.oauth.repository import OAuthRepository
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


@dataclass(frozen=True, slots=True)
class AppRecord:
    """What request authorisation needs to know about an OAuth client."""

    pk: int
    client_id: str
    approved: bool
    first_party: bool
    partner_registered: bool
    # Public (PKCE-only) apps cannot obtain the partner token that registration needs.
    confidential: bool
    # The developer account billed for the app's usage; None for first-party clients.
    owner_id: int | None = None

    @classmethod
    def of(cls, row: OAuthClient) -> AppRecord:
        return cls(
            pk=row.id,
            client_id=row.client_id,
            approved=row.status == "approved",
            first_party=row.first_party,
            partner_registered=row.partner_registered_at is not None,
            confidential=row.client_type == "confidential",
            owner_id=None if row.first_party else row.owner_id,
        )


@dataclass(frozen=True, slots=True)
class GrantRecord:
    """An active consent: the scopes and the Fleet ids one user allowed one app."""

    scopes: frozenset[str]
    vehicle_ids: frozenset[int]

    @classmethod
    def of(cls, row: ConsentGrant) -> GrantRecord:
        return cls(frozenset(as_list(row.scopes)), vehicle_ids(as_list(row.devices)))


class Directory:
    """Vehicles by VIN and Fleet id, users by token subject, apps by client_id and consent by
    (user, app); entries expire after `ttl_s`.

    Other processes (`flotta sim`, a second API process) may add records, so entries are
    short-lived; within one process, writers call `forget()`.
    """

    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], clock: Clock, ttl_s: float = 5.0
    ) -> None:
        self._sessions = sessions
        self._clock = clock
        self._vehicles: ExpiringCache[str, VehicleRecord | None] = ExpiringCache(ttl_s)
        self._users: ExpiringCache[str, UserRecord | None] = ExpiringCache(ttl_s)
        self._owned: ExpiringCache[int, list[VehicleRecord]] = ExpiringCache(ttl_s)
        self._driven: ExpiringCache[int, frozenset[int]] = ExpiringCache(ttl_s)
        self._drivers: ExpiringCache[int, frozenset[int]] = ExpiringCache(ttl_s)
        self._apps: ExpiringCache[str, AppRecord | None] = ExpiringCache(ttl_s)
        self._grants: ExpiringCache[str, GrantRecord | None] = ExpiringCache(ttl_s)

    async def vehicle(self, tag: str) -> VehicleRecord | None:
        """Resolve a `{vehicle_tag}`: a 17-character VIN or the numeric Fleet id."""
        return await self._vehicles.get(tag, self._clock.monotonic(), self._load_vehicle)

    async def _load_vehicle(self, tag: str) -> VehicleRecord | None:
        async with self._sessions() as session:
            repo = VehicleRepository(session)
            row = await repo.by_vin(tag) if not tag.isdigit() else None
            if row is None and tag.isdigit() and len(tag) < 20:
                row = await repo.by_id(int(tag))
        return VehicleRecord.of(row) if row else None

    async def vehicles_of(self, owner_id: int) -> Sequence[VehicleRecord]:
        return await self._owned.get(owner_id, self._clock.monotonic(), self._load_owned)

    async def _load_owned(self, owner_id: int) -> list[VehicleRecord]:
        async with self._sessions() as session:
            rows = await VehicleRepository(session).owned_by(owner_id)
        return [VehicleRecord.of(r) for r in rows]

    async def driven_by(self, user_id: int) -> frozenset[int]:
        """Fleet ids of vehicles shared with this account as a driver."""
        return await self._driven.get(user_id, self._clock.monotonic(), self._load_driven)

    async def _load_driven(self, user_id: int) -> frozenset[int]:
        async with self._sessions() as session:
            return frozenset(await DriverRepository(session).driven_vehicle_ids(user_id))

    async def drivers_of(self, fleet_id: int) -> frozenset[int]:
        """Accounts the vehicle is shared with as drivers."""
        return await self._drivers.get(fleet_id, self._clock.monotonic(), self._load_drivers)

    async def _load_drivers(self, fleet_id: int) -> frozenset[int]:
        async with self._sessions() as session:
            return frozenset(await DriverRepository(session).driver_ids(fleet_id))

    async def visible_to(self, user_id: int) -> list[VehicleRecord]:
        """Owned vehicles first, then those shared with the account, each in id order."""
        records = list(await self.vehicles_of(user_id))
        for fleet_id in sorted(await self.driven_by(user_id)):
            record = await self.vehicle(str(fleet_id))
            if record is not None:
                records.append(record)
        return records

    async def user(self, subject: str) -> UserRecord | None:
        return await self._users.get(subject, self._clock.monotonic(), self._load_user)

    async def _load_user(self, subject: str) -> UserRecord | None:
        async with self._sessions() as session:
            row = await UserRepository(session).by_uuid(subject)
        return UserRecord.of(row) if row else None

    async def app(self, client_id: str) -> AppRecord | None:
        """The OAuth client behind a token's `azp`."""
        return await self._apps.get(client_id, self._clock.monotonic(), self._load_app)

    async def _load_app(self, client_id: str) -> AppRecord | None:
        async with self._sessions() as session:
            row = await OAuthRepository(session).client(client_id)
        return AppRecord.of(row) if row else None

    async def grant(self, user_id: int, app_pk: int) -> GrantRecord | None:
        """The user's active consent to the app, or None (never given, or revoked)."""
        key = f"{user_id}:{app_pk}"
        return await self._grants.get(key, self._clock.monotonic(), self._load_grant)

    async def _load_grant(self, key: str) -> GrantRecord | None:
        user_id, _, app_pk = key.partition(":")
        async with self._sessions() as session:
            row = await OAuthRepository(session).active_grant(int(user_id), int(app_pk))
        return None if row is None else GrantRecord.of(row)

    def forget(self) -> None:
        """Drop every cached entry (after provisioning, deleting or changing consent)."""
        caches = (
            self._vehicles,
            self._users,
            self._owned,
            self._driven,
            self._drivers,
            self._apps,
            self._grants,
        )
        for cache in caches:
            cache.clear()
