"""Share invitations and drivers (reference §4.3; tescmd's `POST …/drivers {email}`, §4)."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, Path, Query, Request
from starlette.responses import Response

from flotta.accounts.models import User
from flotta.auth.tokens import Principal
from flotta.db.base import MAX_ROW_ID
from flotta.devices.directory import VehicleRecord
from flotta.errors import InvalidRequest
from flotta.fleet.body import json_object
from flotta.fleet.deps import RuntimeDep, VehicleTag, owner_of, require_scopes, vehicle_for
from flotta.fleet.errors_doc import errors
from flotta.fleet.responses import envelope
from flotta.runtime import Runtime
from flotta.sharing import service
from flotta.sharing.models import Invitation
from flotta.telemetry.consent import stop_streams

router = APIRouter(tags=["sharing"])

Cmds = require_scopes("vehicle_cmds")
ReadInvites = require_scopes("vehicle_device_data", "vehicle_cmds")
AnyToken = require_scopes()

CODE = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")


def _iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


def invitation_object(inv: Invitation, vin: str, base_url: str) -> dict[str, Any]:
    """Tesla's invitation object; the share link points at this server, not tesla.com."""
    share_user = inv.redeemed_by
    return {
        "id": inv.id,
        "owner_id": inv.owner_id,
        "share_user_id": share_user,
        "product_id": vin,
        "state": inv.state,
        "code": inv.code,
        "expires_at": _iso(inv.expires_at),
        "revoked_at": _iso(inv.revoked_at),
        "borrowing_device_id": None,
        "key_id": None,
        "product_type": "vehicle",
        "share_type": "customer",
        "share_user_sso_id": None,
        "active_pubkeys": [],
        "id_s": str(inv.id),
        "owner_id_s": str(inv.owner_id),
        "share_user_id_s": str(share_user) if share_user is not None else None,
        "borrowing_key_hash": None,
        "vin": vin,
        "share_link": f"{base_url.rstrip('/')}/_rs/1/{inv.code}",
    }


def driver_object(user: User) -> dict[str, Any]:
    first, _, last = user.full_name.strip().partition(" ")
    return {
        "my_tesla_unique_id": user.id,
        "user_id": user.id,
        "user_id_s": str(user.id),
        "vault_uuid": user.uuid,
        "driver_first_name": first,
        "driver_last_name": last,
        "granular_access": {"hide_private": False},
        "active_pubkeys": [],
        "public_key": "",
    }


async def _create(runtime: Runtime, record: VehicleRecord, email: str | None) -> Response:
    async with runtime.sessions() as s, s.begin():
        inv = await service.create_invitation(
            s, vehicle_id=record.id, owner_id=record.owner_id, now=runtime.clock.now(), email=email
        )
        body = invitation_object(inv, record.vin, runtime.settings.public_base_url)
    return envelope(body)


@router.get("/api/1/vehicles/{vehicle_tag}/invitations", responses=errors(401, 403, 404))
async def list_invitations(
    vehicle_tag: VehicleTag, runtime: RuntimeDep, who: Principal = Depends(ReadInvites)
) -> Response:
    """The vehicle's share invitations, newest first (one page of at most 25)."""
    record = await vehicle_for(who, runtime, vehicle_tag, owner_only=True)
    async with runtime.sessions() as s:
        rows = await service.list_invitations(s, record.id)
        items = [invitation_object(i, record.vin, runtime.settings.public_base_url) for i in rows]
    return envelope(items, count=len(items))


@router.post("/api/1/vehicles/{vehicle_tag}/invitations", responses=errors(400, 401, 403, 404))
async def create_invitation(
    vehicle_tag: VehicleTag, runtime: RuntimeDep, who: Principal = Depends(Cmds)
) -> Response:
    """A single-use, 24-hour driver invite; the car need not be online."""
    record = await vehicle_for(who, runtime, vehicle_tag, owner_only=True)
    return await _create(runtime, record, None)


@router.post(
    "/api/1/vehicles/{vehicle_tag}/invitations/{invitation_id}/revoke",
    responses=errors(400, 401, 403, 404),
)
async def revoke_invitation(
    vehicle_tag: VehicleTag,
    runtime: RuntimeDep,
    invitation_id: int = Path(ge=1, le=MAX_ROW_ID),
    who: Principal = Depends(Cmds),
) -> Response:
    record = await vehicle_for(who, runtime, vehicle_tag, owner_only=True)
    async with runtime.sessions() as s, s.begin():
        done = await service.revoke_invitation(
            s, vehicle_id=record.id, invitation_id=invitation_id, now=runtime.clock.now()
        )
    runtime.directory.forget()  # revoking a redeemed invite also removes its driver
    await stop_streams(runtime.telemetry, done.removed_configs)
    return envelope(True)


async def _redeem_code(request: Request) -> str:
    """`{"code": …}` in the body, or tesla-fleet-api's `?<code>=<code>` query."""
    body = await json_object(request)
    code = body.get("code")
    if code is None:
        code = request.query_params.get("code")
    if code is None:
        pairs = [k for k, v in request.query_params.multi_items() if k == v]
        code = pairs[0] if pairs else None
    if code is None:
        raise InvalidRequest('invalid code param: send {"code": "<invite code>"}')
    if not isinstance(code, str) or not CODE.match(code):
        raise InvalidRequest("invalid code param: not an invitation code")
    return code


@router.post("/api/1/invitations/redeem", responses=errors(400, 401, 404))
async def redeem_invitation(
    request: Request, runtime: RuntimeDep, who: Principal = Depends(AnyToken)
) -> Response:
    """Become a driver of someone else's vehicle."""
    code = await _redeem_code(request)
    user = await owner_of(who, runtime)
    async with runtime.sessions() as s, s.begin():
        done = await service.redeem_invitation(
            s, code=code, user_id=user.id, email=user.email, now=runtime.clock.now()
        )
        body = {"vehicle_id_s": str(done.vehicle.vehicle_id), "vin": done.vehicle.vin}
    runtime.directory.forget()  # the new driver sees the car on the next request
    return envelope(body)


@router.get("/api/1/vehicles/{vehicle_tag}/drivers", responses=errors(401, 403, 404))
async def list_drivers(
    vehicle_tag: VehicleTag, runtime: RuntimeDep, who: Principal = Depends(Cmds)
) -> Response:
    """The vehicle's drivers; only its owner may list them."""
    record = await vehicle_for(who, runtime, vehicle_tag, owner_only=True)
    async with runtime.sessions() as s:
        items = [driver_object(u) for _, u in await service.list_drivers(s, record.id)]
    return envelope(items, count=len(items))


@router.post("/api/1/vehicles/{vehicle_tag}/drivers", responses=errors(400, 401, 403, 404))
async def add_driver(
    vehicle_tag: VehicleTag, request: Request, runtime: RuntimeDep, who: Principal = Depends(Cmds)
) -> Response:
    """tescmd's add-driver: an invitation meant for that e-mail address."""
    record = await vehicle_for(who, runtime, vehicle_tag, owner_only=True)
    email = (await json_object(request)).get("email")
    if not isinstance(email, str) or len(email) > 320 or not EMAIL.match(email.strip()):
        raise InvalidRequest('invalid email param: send {"email": "driver@example.com"}')
    return await _create(runtime, record, email.strip())


@router.delete("/api/1/vehicles/{vehicle_tag}/drivers", responses=errors(400, 401, 403, 404))
async def remove_driver(
    vehicle_tag: VehicleTag,
    runtime: RuntimeDep,
    share_user_id: int = Query(ge=1, le=MAX_ROW_ID),
    who: Principal = Depends(Cmds),
) -> Response:
    """Owners remove any driver; a driver may remove themself."""
    record = await vehicle_for(who, runtime, vehicle_tag)
    user = await owner_of(who, runtime)
    async with runtime.sessions() as s, s.begin():
        removed = await service.remove_driver(
            s,
            vehicle_id=record.id,
            owner_id=record.owner_id,
            caller_id=user.id,
            share_user_id=share_user_id,
        )
    runtime.directory.forget()  # the removed driver loses the car on the next request
    await stop_streams(runtime.telemetry, removed)  # streams that relied on the driver stop
    return envelope("ok")
