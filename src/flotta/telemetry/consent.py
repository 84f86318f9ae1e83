"""Streaming follows access: a config lives only while its app may still reach the car.

Tesla removes a config when the owner revokes the app or a needed scope, or removes the app's
key from the car (fleet-api.md §3.3, §9.1). Flotta applies one rule after every change of
access (consent narrowed or revoked, a driver removed, a virtual key removed): a third-party
app's config stays only while its key is paired and the owner or a driver of the car consents
to it reaching the car with `vehicle_device_data` (and `vehicle_location` for location fields).
Called inside the transaction that makes the change; once it has committed, the caller tells
the cars (`stop_streams`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from flotta.devices.models import Vehicle
from flotta.devices.repository import VehicleRepository
from flotta.oauth.consent import vehicle_ids
from flotta.oauth.models import ConsentGrant, as_list
from flotta.oauth.repository import OAuthRepository
from flotta.sharing.repository import DriverRepository
from flotta.telemetry.models import TelemetryConfigRow
from flotta.telemetry.repository import TelemetryRepository
from flotta.telemetry.service import (
    DATA_SCOPE,
    LOCATION_SCOPE,
    ConfigState,
    is_key_paired,
    location_fields,
)
from flotta.telemetry.sync import TelemetrySync


async def prune_vehicle(
    session: AsyncSession, vehicle: Vehicle, client_ids: Iterable[str] | None = None
) -> list[ConfigState]:
    """Remove the configs on `vehicle` (of `client_ids`, else of every app) that lost access."""
    wanted = None if client_ids is None else set(client_ids)
    repo = TelemetryRepository(session)
    rows = [
        r for r in await repo.configs_on(vehicle.vin) if wanted is None or r.client_id in wanted
    ]
    if not rows:
        return []
    accounts = [vehicle.owner_id, *sorted(await DriverRepository(session).driver_ids(vehicle.id))]
    removed: list[ConfigState] = []
    for row in rows:
        if not await _may_stream(session, row, vehicle, accounts):
            removed.append(ConfigState.of(row))
            await repo.remove(row)
    return removed


async def _may_stream(
    session: AsyncSession, row: TelemetryConfigRow, vehicle: Vehicle, accounts: Sequence[int]
) -> bool:
    oauth = OAuthRepository(session)
    app = await oauth.client(row.client_id)
    if app is None or app.first_party:
        # The owner's own tools (the CLI's token has no app record) need no consent or key;
        # an unknown app has no consent anyway, so ingest drops what it would stream.
        return True
    if not is_key_paired(vehicle.config or {}, app.public_key, first_party=False):
        return False
    needed = {DATA_SCOPE, LOCATION_SCOPE} if location_fields(row.config) else {DATA_SCOPE}
    grants = await oauth.active_grants(set(accounts), {app.id})
    return any(_covers(grant, vehicle.id, needed) for grant in grants.values())


def _covers(grant: ConsentGrant, fleet_id: int, scopes: set[str]) -> bool:
    return fleet_id in vehicle_ids(as_list(grant.devices)) and scopes <= set(as_list(grant.scopes))


async def prune_for_grant(session: AsyncSession, grant: ConsentGrant) -> list[ConfigState]:
    """Remove the app's configs on the user's vehicles (owned or driven) that lost access now
    that `grant` is as it is (narrowed or revoked)."""
    app = await OAuthRepository(session).client_by_pk(grant.client_pk)
    if app is None:
        return []
    vehicles = VehicleRepository(session)
    cars = {vehicle.id: vehicle for vehicle in await vehicles.owned_by(grant.user_id)}
    for fleet_id in await DriverRepository(session).driven_vehicle_ids(grant.user_id):
        if fleet_id not in cars and (vehicle := await vehicles.by_id(fleet_id)) is not None:
            cars[fleet_id] = vehicle
    removed: list[ConfigState] = []
    for fleet_id in sorted(cars):
        removed += await prune_vehicle(session, cars[fleet_id], [app.client_id])
    return removed


async def stop_streams(sync: TelemetrySync | None, removed: Sequence[ConfigState]) -> None:
    """After the commit: tell the cars (and this process's ingest) that the configs are gone."""
    if sync is not None and removed:
        await sync.push_removed(removed)
