"""Pair and remove an app's virtual key on a vehicle (a Flotta extension; reference §3.3).

On Tesla the owner approves a key in the Tesla app (`https://tesla.com/_ak/<domain>`) and removes
it on the car's Locks screen; there is no Fleet API call for either. Flotta's sandbox has no
phone or car screen, so the owner does both here, with a first-party token (`flotta token`).
Removing a key stops the streams of the apps it belongs to, as on Tesla.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response

from flotta.auth.tokens import Principal
from flotta.devices.models import Vehicle
from flotta.devices.repository import VehicleRepository
from flotta.errors import FlottaError, NotFound
from flotta.fleet.deps import RuntimeDep, VehicleTag, owners_tool, require_scopes, vehicle_for
from flotta.fleet.errors_doc import ErrorEnvelope, errors
from flotta.fleet.responses import envelope
from flotta.runtime import Runtime
from flotta.telemetry.consent import stop_streams
from flotta.vehicles import keys

router = APIRouter(tags=["virtual keys"])

KEY_PATH = "/flotta/v1/vehicles/{vehicle_tag}/keys/{public_key}"
Cmds = require_scopes("vehicle_cmds")
PublicKey = Annotated[
    str,
    Path(
        max_length=200,
        description="The app's public key: the uncompressed P-256 point, 130 hex characters",
    ),
]
_ERRORS: dict[int | str, dict[str, Any]] = {
    **errors(400, 401, 404),
    403: {
        "model": ErrorEnvelope,
        "description": "Missing vehicle_cmds, not the owner's own token, or not the owner",
    },
}


class NotOwnersTool(FlottaError):
    status = 403
    key = "forbidden"


async def _owned_vehicle(runtime: Runtime, who: Principal, tag: str) -> int:
    """The Fleet id of the caller's own vehicle; only the owner's own apps manage keys."""
    if not await owners_tool(who, runtime):
        raise NotOwnersTool(
            "only the owner pairs and removes virtual keys, with their own token "
            "(flotta token); a third-party app sends the owner its pairing link instead"
        )
    return (await vehicle_for(who, runtime, tag, owner_only=True)).id


async def _row(session: AsyncSession, fleet_id: int) -> Vehicle:
    row = await VehicleRepository(session).by_id(fleet_id)
    if row is None:
        raise NotFound(f"no vehicle {fleet_id} on this account")
    return row


@router.put(KEY_PATH, summary="Pair a virtual key on the vehicle (owner)", responses=_ERRORS)
async def pair_key(
    vehicle_tag: VehicleTag,
    public_key: PublicKey,
    runtime: RuntimeDep,
    who: Principal = Depends(Cmds),
) -> Response:
    """Enrol the app's public key on the car, as approving Tesla's pairing link does."""
    key = keys.parse_public_key(public_key)
    fleet_id = await _owned_vehicle(runtime, who, vehicle_tag)
    async with runtime.sessions() as session, session.begin():
        row = await _row(session, fleet_id)
        await keys.pair_key(session, row, key)
        vin = row.vin
    runtime.directory.forget()
    return envelope({"vin": vin, "public_key": key, "key_paired": True})


@router.delete(KEY_PATH, summary="Remove a virtual key from the vehicle (owner)", responses=_ERRORS)
async def remove_key(
    vehicle_tag: VehicleTag,
    public_key: PublicKey,
    runtime: RuntimeDep,
    who: Principal = Depends(Cmds),
) -> Response:
    """Take the key off the car: the streaming configs of its apps are removed, cars stop."""
    key = keys.parse_public_key(public_key)
    fleet_id = await _owned_vehicle(runtime, who, vehicle_tag)
    async with runtime.sessions() as session, session.begin():
        row = await _row(session, fleet_id)
        removed = await keys.remove_key(session, row, key)
        vin = row.vin
    if removed is None:
        raise NotFound(f"the key {key[:12]}… is not paired on {vin}")
    runtime.directory.forget()
    await stop_streams(runtime.telemetry, removed)
    body = {"vin": vin, "public_key": key, "key_paired": False}
    return envelope({**body, "telemetry_configs_removed": len(removed)})
