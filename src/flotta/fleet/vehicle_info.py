"""Vehicle information endpoints (reference §4.3; tescmd's specs and eligibility, clients §4)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from starlette.responses import Response

from flotta.adapters.sink_receiver import CLIENT_VERSION
from flotta.auth.tokens import Principal
from flotta.devices.directory import VehicleRecord
from flotta.devices.repository import VehicleRepository
from flotta.errors import InvalidRequest, MissingScopes, NotFound, VehicleUnavailable
from flotta.fleet.body import json_object
from flotta.fleet.deps import (
    RuntimeDep,
    VehicleTag,
    may_reach,
    owner_of,
    owners_tool,
    require_scopes,
    vehicle_for,
    visible_vehicles,
)
from flotta.fleet.errors_doc import errors
from flotta.fleet.responses import envelope
from flotta.gateway.routing import DeviceView
from flotta.runtime import Runtime
from flotta.sim.vehicle_models import MODELS
from flotta.telemetry.repository import TelemetryRepository
from flotta.telemetry.service import hardware_supported, is_key_paired
from flotta.vehicles import ownership
from flotta.vehicles.charging_sites import nearby_sites
from flotta.vehicles.options import option_list
from flotta.vehicles.release_notes import customer_version, release_notes

router = APIRouter(tags=["vehicle information"])

DeviceData = require_scopes("vehicle_device_data")
Cmds = require_scopes("vehicle_cmds")
AnyToken = require_scopes()

VIN_PATTERN = r"^[A-Za-z0-9]{17}$"
MAX_FLEET_STATUS_VINS = 100
# The telemetry client version a car reports (reference §9.2): the one Flotta's receiver
# connections announce in their `Version` header, as the car's client would.
FLEET_TELEMETRY_VERSION = CLIENT_VERSION


async def _connected(runtime: Runtime, vin: str) -> DeviceView | None:
    """What the gateway holding the car knows, asleep or not; None when it is not connected."""
    try:
        return await runtime.hub.view(vin, require_online=False)
    except VehicleUnavailable:
        return None


async def firmware_of(runtime: Runtime, record: VehicleRecord) -> str:
    """The car's firmware: live if connected, else what its model ships with."""
    view = await _connected(runtime, record.vin)
    if view is not None:
        live = view.mirror.get("Version") or view.firmware
        if isinstance(live, str) and live:
            return live
    model = MODELS.get(record.model)
    return model.firmware if model else ""


async def _odometer(runtime: Runtime, vin: str) -> float | None:
    view = await _connected(runtime, vin)
    value = view.mirror.get("Odometer") if view is not None else None
    return float(value) if isinstance(value, int | float) else None


@router.get("/api/1/vehicles/{vehicle_tag}/mobile_enabled", responses=errors(401, 403, 404, 408))
async def mobile_enabled(
    vehicle_tag: VehicleTag, runtime: RuntimeDep, who: Principal = Depends(Cmds)
) -> Response:
    """Whether mobile access is allowed; answered by the car, so it must be online."""
    record = await vehicle_for(who, runtime, vehicle_tag)
    _, config = await runtime.hub.mirror_of(record.vin)
    enabled = config.get("mobile_access_enabled", True) is not False
    return envelope({"reason": "" if enabled else "mobile_access_disabled", "result": enabled})


@router.get(
    "/api/1/vehicles/{vehicle_tag}/nearby_charging_sites",
    responses=errors(400, 401, 403, 404, 408),
)
async def nearby_charging_sites(
    vehicle_tag: VehicleTag,
    runtime: RuntimeDep,
    who: Principal = Depends(DeviceData),
    count: int | None = Query(None, ge=1, le=50, description="Sites of each kind"),
    radius: int | None = Query(None, ge=1, le=500, description="Miles from the car"),
    detail: bool = Query(False),
) -> Response:
    """Superchargers and destination chargers nearest the car's live location."""
    record = await vehicle_for(who, runtime, vehicle_tag)
    mirror, _ = await runtime.hub.mirror_of(record.vin)
    location = mirror.get("Location")
    if not isinstance(location, dict) or "latitude" not in location:
        raise VehicleUnavailable("the vehicle has not reported its location yet")
    body = nearby_sites(
        float(location["latitude"]),
        float(location["longitude"]),
        runtime.clock.now(),
        count=count,
        radius_mi=radius,
        detail=detail,
    )
    return envelope(body)


def _alert_object(raw: Any) -> dict[str, Any] | None:
    if not isinstance(raw, dict) or not raw.get("name"):
        return None
    audience = raw.get("audience") or raw.get("audiences") or ["customer"]
    return {
        "name": str(raw["name"]),
        "time": raw.get("time") or raw.get("started_at") or raw.get("startedAt"),
        "audience": [str(a) for a in audience] if isinstance(audience, list) else ["customer"],
        "user_text": str(raw.get("user_text", "")),
    }


@router.get("/api/1/vehicles/{vehicle_tag}/recent_alerts", responses=errors(401, 403, 404))
async def recent_alerts(
    vehicle_tag: VehicleTag, runtime: RuntimeDep, who: Principal = Depends(DeviceData)
) -> Response:
    """Alerts the connected car has reported; none when it is not connected."""
    record = await vehicle_for(who, runtime, vehicle_tag)
    view = await _connected(runtime, record.vin)
    raw = view.mirror.get("Alerts") if view is not None else None
    alerts = [a for a in map(_alert_object, raw if isinstance(raw, list) else []) if a]
    return envelope({"recent_alerts": alerts})


@router.get("/api/1/vehicles/{vehicle_tag}/release_notes", responses=errors(400, 401, 403, 404))
async def get_release_notes(
    vehicle_tag: VehicleTag,
    runtime: RuntimeDep,
    who: Principal = Depends(DeviceData),
    staged: bool = Query(False, description="Notes of the downloaded, not yet installed update"),
    language: int | None = Query(None, ge=0, le=10_000),
) -> Response:
    """Notes of the installed firmware, or of the staged update (`staged=true`)."""
    record = await vehicle_for(who, runtime, vehicle_tag)
    if staged:
        view = await _connected(runtime, record.vin)
        pending = view.mirror.get("SoftwareUpdateVersion") if view is not None else ""
        version = pending if isinstance(pending, str) else ""
    else:
        version = await firmware_of(runtime, record)
    # Only English notes exist; any language id falls back to them, as Tesla's does.
    return envelope({"release_notes": release_notes(version)})


@router.get("/api/1/vehicles/{vehicle_tag}/service_data", responses=errors(401, 403, 404))
async def service_data(
    vehicle_tag: VehicleTag, runtime: RuntimeDep, who: Principal = Depends(DeviceData)
) -> Response:
    """Service visit status; a car in service mode counts as in service."""
    record = await vehicle_for(who, runtime, vehicle_tag)
    view = await _connected(runtime, record.vin)
    in_service = view is not None and view.mirror.get("ServiceMode") is True
    return envelope(
        {
            "service_status": "in_service" if in_service else "not_in_service",
            "service_etc": None,
            "service_visit_number": None,
            "status_id": None,
        }
    )


@router.get("/api/1/dx/vehicles/options", responses=errors(400, 401, 403, 404))
async def vehicle_options(
    runtime: RuntimeDep,
    who: Principal = Depends(DeviceData),
    vin: str = Query(pattern=VIN_PATTERN),
) -> Response:
    record = await vehicle_for(who, runtime, vin)
    return envelope({"codes": option_list(record.option_codes)})


@router.get("/api/1/dx/warranty/details", responses=errors(400, 401, 403, 404))
async def warranty_details(
    runtime: RuntimeDep,
    who: Principal = Depends(DeviceData),
    vin: str | None = Query(None, pattern=VIN_PATTERN),
) -> Response:
    """Coverage of one vehicle, or of every vehicle on the account when `vin` is absent."""
    if vin is not None:
        records = [await vehicle_for(who, runtime, vin)]
    else:
        records = await visible_vehicles(who, runtime, owned_only=True)
    now = runtime.clock.now()
    out: dict[str, list[dict[str, Any]]] = {
        "activeWarranty": [],
        "upcomingWarranty": [],
        "expiredWarranty": [],
    }
    async with runtime.sessions() as s:
        repo = VehicleRepository(s)
        for record in records:
            row = await repo.by_id(record.id)
            if row is None:
                continue
            items = ownership.warranty_items(
                record.model, row.created_at, now, await _odometer(runtime, record.vin)
            )
            for key, values in items.items():
                out[key].extend({**v, "vin": record.vin} for v in values)
    return envelope(out)


@router.get("/api/1/dx/vehicles/subscriptions/eligibility", responses=errors(400, 401, 403, 404))
async def subscription_eligibility(
    runtime: RuntimeDep,
    who: Principal = Depends(DeviceData),
    vin: str = Query(pattern=VIN_PATTERN),
) -> Response:
    record = await vehicle_for(who, runtime, vin)
    body = ownership.subscription_eligibility(record.vin, record.option_codes, runtime.clock.now())
    return envelope(body)


@router.get("/api/1/dx/vehicles/upgrades/eligibility", responses=errors(400, 401, 403, 404))
async def upgrade_eligibility(
    runtime: RuntimeDep,
    who: Principal = Depends(DeviceData),
    vin: str = Query(pattern=VIN_PATTERN),
) -> Response:
    record = await vehicle_for(who, runtime, vin)
    return envelope(ownership.upgrade_eligibility(record.vin, record.model, record.option_codes))


@router.get("/api/1/vehicles/{vehicle_tag}/specs", responses=errors(401, 403, 404))
async def vehicle_specs(
    vehicle_tag: VehicleTag, runtime: RuntimeDep, who: Principal = Depends(AnyToken)
) -> Response:
    """As-sold specs: a partner token sees any vehicle, an owner token only its own."""
    if who.partner:
        found = await runtime.directory.vehicle(vehicle_tag)
        if found is None:
            raise NotFound(f"no vehicle {vehicle_tag!r}")
        record = found
    else:
        if "vehicle_device_data" not in who.scopes:
            raise MissingScopes("this endpoint needs vehicle_device_data or a partner token")
        record = await vehicle_for(who, runtime, vehicle_tag)
    return envelope(ownership.specs(record.vin, record.model, record.option_codes))


def _parse_vins(body: dict[str, Any]) -> list[str]:
    vins = body.get("vins")
    if not isinstance(vins, list) or not vins:
        raise InvalidRequest('invalid vins param: send {"vins": ["<VIN>", …]}', key="invalid_field")
    if len(vins) > MAX_FLEET_STATUS_VINS:
        raise InvalidRequest(
            f"invalid vins param: at most {MAX_FLEET_STATUS_VINS} VINs", key="invalid_field"
        )
    if not all(isinstance(v, str) and len(v) == 17 and v.isalnum() for v in vins):
        raise InvalidRequest(
            "invalid vins param: each must be a 17-character VIN", key="invalid_field"
        )
    return list(dict.fromkeys(v.upper() for v in vins))


async def _visible(who: Principal, runtime: Runtime, vins: list[str]) -> list[VehicleRecord]:
    """The caller's vehicles among `vins`; a partner token sees every known one."""
    owner_id = None if who.partner else (await owner_of(who, runtime)).id
    records = []
    for vin in vins:
        record = await runtime.directory.vehicle(vin)
        if record is None or not may_reach(who, record):
            continue
        if owner_id is None or record.owner_id == owner_id:
            records.append(record)
    return records


@router.post("/api/1/vehicles/fleet_status", responses=errors(400, 401, 403))
async def fleet_status(
    request: Request, runtime: RuntimeDep, who: Principal = Depends(AnyToken)
) -> Response:
    """Key pairing and firmware per VIN; VINs the caller cannot see are left out."""
    vins = _parse_vins(await json_object(request))
    records = await _visible(who, runtime, vins)
    app_key = None  # the owner's own tools have no key: they see the record's pairing flag
    if not await owners_tool(who, runtime):
        async with runtime.sessions() as session:
            app_key = await TelemetryRepository(session).app_public_key(who.client_id)
    paired: list[str] = []
    unpaired: list[str] = []
    info: dict[str, dict[str, Any]] = {}
    for record in records:
        # The server cannot see the car's keychain; only the record can vouch for pairing.
        is_paired = is_key_paired(record.config, app_key, first_party=False)
        (paired if is_paired else unpaired).append(record.vin)
        stored = record.config.get("total_number_of_keys", 0)
        # A car the app's key is paired with holds at least that key.
        keys = max(stored if isinstance(stored, int) else 0, 1 if is_paired else 0)
        firmware = await firmware_of(runtime, record)
        entry: dict[str, Any] = {
            "firmware_version": customer_version(firmware),
            "vehicle_command_protocol_required": record.command_signing == "required",
            "fleet_telemetry_version": FLEET_TELEMETRY_VERSION,
            "total_number_of_keys": keys,
        }
        if len(vins) == 1:
            # Tesla discounts data requests of cars that cannot stream (pre-2021 S/X).
            entry["discounted_device_data"] = not hardware_supported(record.model, firmware)
        info[record.vin] = entry
    return envelope({"key_paired_vins": paired, "unpaired_vins": unpaired, "vehicle_info": info})
