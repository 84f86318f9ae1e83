"""Products, the vehicle list, one vehicle, `vehicle_data` and `wake_up` (reference §4.2-4.3)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query, Request
from starlette.responses import Response

from flotta.auth.tokens import Principal
from flotta.errors import InvalidRequest
from flotta.fleet.deps import (
    RuntimeDep,
    VehicleTag,
    access_type,
    owner_of,
    require_scopes,
    vehicle_for,
    visible_vehicles,
)
from flotta.fleet.energy import energy_products
from flotta.fleet.errors_doc import errors
from flotta.fleet.responses import envelope, paginated
from flotta.vehicles.objects import product_object, vehicle_object
from flotta.vehicles.render import render_vehicle_data

router = APIRouter(tags=["vehicles"])

DeviceData = require_scopes("vehicle_device_data")
# The 2023 docs put wake_up under vehicle_device_data, the scope list under vehicle_cmds.
WakeScopes = require_scopes("vehicle_device_data", "vehicle_cmds")

ENDPOINTS = frozenset(
    {
        "charge_state",
        "climate_state",
        "closures_state",
        "drive_state",
        "gui_settings",
        "location_data",
        "charge_schedule_data",
        "preconditioning_schedule_data",
        "vehicle_config",
        "vehicle_state",
        "vehicle_data_combo",
    }
)
DEFAULT_SECTIONS = frozenset(
    {
        "charge_state",
        "climate_state",
        "drive_state",
        "gui_settings",
        "vehicle_config",
        "vehicle_state",
    }
)


@router.get("/api/1/products", responses=errors(401))
async def products(
    request: Request, runtime: RuntimeDep, who: Principal = Depends(require_scopes())
) -> Response:
    """Every vehicle and energy site of the token's account."""
    user = await owner_of(who, runtime)
    records = await visible_vehicles(who, runtime)
    states = await runtime.hub.states([v.vin for v in records])
    items = [
        product_object(v, state, access_type(user, v))
        for v, state in zip(records, states, strict=True)
    ]
    items += await energy_products(request, who, user.id)  # issue 6: sites after vehicles
    return envelope(items, count=len(items))


@router.get("/api/1/vehicles", responses=errors(401, 403))
async def list_vehicles(
    runtime: RuntimeDep,
    who: Principal = Depends(DeviceData),
    page: int = Query(1, ge=1, le=100_000),
    per_page: int = Query(100, ge=1, le=100),
) -> Response:
    user = await owner_of(who, runtime)
    records = await visible_vehicles(who, runtime)
    shown = records[(page - 1) * per_page : page * per_page]
    states = await runtime.hub.states([v.vin for v in shown])
    items = [
        vehicle_object(v, state, access_type(user, v))
        for v, state in zip(shown, states, strict=True)
    ]
    return paginated(items, page=page, per_page=per_page, total=len(records))


@router.get("/api/1/vehicles/{vehicle_tag}", responses=errors(401, 403, 404))
async def get_vehicle(
    vehicle_tag: VehicleTag, runtime: RuntimeDep, who: Principal = Depends(DeviceData)
) -> Response:
    """One vehicle; never wakes it. Its `state` says whether paid calls can succeed."""
    record = await vehicle_for(who, runtime, vehicle_tag)
    access = access_type(await owner_of(who, runtime), record)
    return envelope(vehicle_object(record, await runtime.hub.state(record.vin), access))


def parse_endpoints(raw: str | None) -> frozenset[str]:
    """`endpoints=a;b;c` (percent-encoded `;` arrives decoded); commas are tolerated too."""
    if raw is None or not raw.strip():
        return DEFAULT_SECTIONS
    wanted = frozenset(p.strip() for p in raw.replace(",", ";").split(";") if p.strip())
    unknown = sorted(wanted - ENDPOINTS)
    if unknown:
        raise InvalidRequest(
            f"invalid endpoints param: unknown {', '.join(unknown)}; "
            f"choose from {', '.join(sorted(ENDPOINTS))}",
            key="invalid_field",
        )
    if "vehicle_data_combo" in wanted:
        wanted = (wanted | DEFAULT_SECTIONS) - {"vehicle_data_combo"}
    return wanted


@router.get("/api/1/vehicles/{vehicle_tag}/vehicle_data", responses=errors(400, 401, 403, 404, 408))
async def vehicle_data(
    vehicle_tag: VehicleTag,
    runtime: RuntimeDep,
    who: Principal = Depends(DeviceData),
    endpoints: str | None = Query(None, max_length=1000),
) -> Response:
    """Live data from an online vehicle; location only with `location_data` and its scope."""
    sections = parse_endpoints(endpoints)
    record = await vehicle_for(who, runtime, vehicle_tag)
    view = await runtime.hub.view(record.vin)
    include_location = "location_data" in sections and "vehicle_location" in who.scopes
    user = await owner_of(who, runtime)
    now_ms = int(runtime.clock.now().timestamp() * 1000)
    # Same mirror version, same request, same second: the same bytes (timestamps are to 1 s).
    key = (record, view.version, sections, include_location, user.id, now_ms // 1000)
    cached = runtime.answers.get(key) if view.version else None
    if cached is not None:
        return Response(cached, media_type="application/json")
    data = render_vehicle_data(view.mirror, view.config, set(sections), include_location, now_ms)
    body = envelope(
        {**vehicle_object(record, "online", access_type(user, record)), "user_id": user.id, **data}
    )
    if view.version:
        runtime.answers.put(key, bytes(body.body))
    return body


@router.post("/api/1/vehicles/{vehicle_tag}/wake_up", responses=errors(401, 403, 404))
async def wake_up(
    vehicle_tag: VehicleTag, runtime: RuntimeDep, who: Principal = Depends(WakeScopes)
) -> Response:
    """Wake a sleeping vehicle; answers with its state after a short grace period."""
    record = await vehicle_for(who, runtime, vehicle_tag)
    state = await runtime.hub.wake(record.vin, runtime.settings.gateway.wake_grace_s)
    user = await owner_of(who, runtime)
    access = access_type(user, record)
    return envelope({**vehicle_object(record, state, access), "user_id": user.id})
