"""`/api/1/subscriptions` and `/api/1/vehicle_subscriptions`: legacy push registration (§4.3).

Flotta keeps the registrations; it has no push service to deliver through, so nothing is sent
to the device (see docs/compatibility.md).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from starlette.responses import Response

from flotta.auth.tokens import Principal
from flotta.errors import InvalidRequest
from flotta.fleet.body import json_object
from flotta.fleet.deps import RuntimeDep, owner_of, require_scopes, visible_vehicles
from flotta.fleet.errors_doc import errors
from flotta.fleet.responses import envelope
from flotta.notifications.service import (
    DEVICE_TYPES,
    replace_subscriptions,
    subscribed_vehicle_ids,
)

router = APIRouter(tags=["notifications"])

UserData = require_scopes("user_data")


def _device(token: Any, kind: Any) -> tuple[str, str]:
    if not isinstance(token, str) or not 1 <= len(token.strip()) <= 512:
        raise InvalidRequest("missing device_token param", key="invalid_field")
    if kind not in DEVICE_TYPES:
        raise InvalidRequest(
            f"invalid device_type param: choose from {', '.join(DEVICE_TYPES)}", key="invalid_field"
        )
    return token.strip(), str(kind)


def _ids(vehicle_ids: list[int]) -> Response:
    return envelope({"ids": vehicle_ids}, count=len(vehicle_ids))


async def _subscribe(
    runtime: RuntimeDep, who: Principal, body: dict[str, Any], only: list[int] | None
) -> Response:
    device_token, device_type = _device(body.get("device_token"), body.get("device_type"))
    user = await owner_of(who, runtime)
    visible = {v.id for v in await visible_vehicles(who, runtime)}
    if only is not None and not set(only) <= visible:
        # Another account's vehicle looks absent here too, as everywhere else.
        raise InvalidRequest("invalid vehicle_ids param: unknown vehicle ids", key="invalid_field")
    async with runtime.sessions() as session, session.begin():
        ids = await replace_subscriptions(
            session,
            user_id=user.id,
            device_token=device_token,
            device_type=device_type,
            vehicle_ids=visible if only is None else only,
            now=runtime.clock.now(),
        )
    return _ids(ids)


@router.get("/api/1/subscriptions", responses=errors(400, 401, 403))
@router.get("/api/1/vehicle_subscriptions", responses=errors(400, 401, 403))
async def list_subscriptions(
    runtime: RuntimeDep,
    who: Principal = Depends(UserData),
    device_token: str = Query("", max_length=512),
    device_type: str = Query("", max_length=32),
) -> Response:
    """Vehicles this mobile device receives push notifications from (both paths agree)."""
    device_token, _ = _device(device_token, device_type)
    user = await owner_of(who, runtime)
    async with runtime.sessions() as session:
        return _ids(await subscribed_vehicle_ids(session, user.id, device_token))


@router.post("/api/1/subscriptions", responses=errors(400, 401, 403))
async def subscribe_all(
    request: Request, runtime: RuntimeDep, who: Principal = Depends(UserData)
) -> Response:
    """Subscribe the device to every vehicle the account can see."""
    return await _subscribe(runtime, who, await json_object(request), None)


@router.post("/api/1/vehicle_subscriptions", responses=errors(400, 401, 403))
async def subscribe_vehicles(
    request: Request, runtime: RuntimeDep, who: Principal = Depends(UserData)
) -> Response:
    """Subscribe the device to exactly the listed vehicles (`vehicle_ids`)."""
    body = await json_object(request)
    wanted = body.get("vehicle_ids")
    if not isinstance(wanted, list) or not all(
        isinstance(v, int) and not isinstance(v, bool) for v in wanted
    ):
        raise InvalidRequest(
            "invalid vehicle_ids param: a list of vehicle ids", key="invalid_field"
        )
    return await _subscribe(runtime, who, body, list(wanted))
