"""Streaming follows consent: narrowing or revoking a grant removes configs it no longer covers.

Tesla removes a config when the owner revokes the app or a needed scope (fleet-api.md §9.1).
Called inside the transaction that changes the grant; the caller then tells the cars
(`TelemetrySync.push_removed`) once it has committed.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from flotta.devices.repository import VehicleRepository
from flotta.oauth.consent import vehicle_ids
from flotta.oauth.models import ConsentGrant, as_list
from flotta.oauth.repository import OAuthRepository
from flotta.sharing.repository import DriverRepository
from flotta.telemetry.service import ConfigState, prune


async def prune_for_grant(session: AsyncSession, grant: ConsentGrant) -> list[ConfigState]:
    """Remove the app's configs on the user's vehicles that `grant` (as it now is) excludes."""
    app = await OAuthRepository(session).client_by_pk(grant.client_pk)
    if app is None:
        return []
    owned = await VehicleRepository(session).owned_by(grant.user_id)
    driven_ids = await DriverRepository(session).driven_vehicle_ids(grant.user_id)
    vins = {vehicle.id: vehicle.vin for vehicle in owned}
    for fleet_id in driven_ids - set(vins):
        vehicle = await VehicleRepository(session).by_id(fleet_id)
        if vehicle is not None:
            vins[vehicle.id] = vehicle.vin
    revoked = grant.revoked_at is not None
    allowed = set() if revoked else vehicle_ids(as_list(grant.devices))
    return await prune(
        session,
        client_id=app.client_id,
        vins=vins.values(),
        reachable=[vin for fleet_id, vin in vins.items() if fleet_id in allowed],
        scopes=[] if revoked else as_list(grant.scopes),
    )
