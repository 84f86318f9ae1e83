"""Fleet Telemetry configuration endpoints (fleet-api.md §9.1, §3.2): transport only.

VINs the token cannot reach (unknown, another account's, or outside the owner's consent) are
not updated, as on Tesla; Flotta names them under `skipped_vehicles.not_found`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from starlette.responses import Response

from flotta.auth.tokens import Principal
from flotta.errors import FlottaError, MissingScopes, NotFound
from flotta.fleet.body import json_object
from flotta.fleet.deps import (
    PrincipalDep,
    RuntimeDep,
    VehicleTag,
    may_reach,
    owner_of,
    owners_tool,
    require_scopes,
    vehicle_for,
)
from flotta.fleet.errors_doc import ErrorEnvelope, errors
from flotta.fleet.partner import PartnerDep
from flotta.fleet.responses import envelope
from flotta.fleet.vehicle_info import firmware_of
from flotta.outbound import DestinationRefused
from flotta.runtime import Runtime
from flotta.telemetry import service
from flotta.telemetry.checks import ConfigProblem
from flotta.telemetry.config import (
    ConfigLimits,
    TelemetryConfig,
    TelemetryConfigError,
    validate_config,
    validate_config_claims,
)
from flotta.telemetry.reachability import check_reachable
from flotta.telemetry.repository import TelemetryRepository
from flotta.telemetry.schnorr import verify_token
from flotta.telemetry.service import Target
from flotta.telemetry.sync import ConfigBusy, TelemetrySync

router = APIRouter(tags=["fleet telemetry"])

DeviceData = require_scopes(service.DATA_SCOPE)
VEHICLES = "/api/1/vehicles"
PARTNER = "/api/1/partner_accounts"


class ConfigInProgress(FlottaError):
    """Reference §7: one fleet_telemetry_config call per app at a time."""

    status = 429
    key = "too_many_requests"


def _declared(extra: dict[int, str], *statuses: int) -> dict[int | str, dict[str, Any]]:
    out = errors(*statuses)
    for status, description in extra.items():
        out[status] = {"model": ErrorEnvelope, "description": description}
    return out


CREATE_ERRORS = _declared(
    {
        400: "Invalid config: `messages` names every problem by its JSON path "
        "(unknown field, interval out of range, bad CA, unreachable hostname:port, …)",
        403: "Missing vehicle_device_data (or vehicle_location for location fields), "
        "or a partner token",
        429: "Another fleet_telemetry_config call of this app is still running",
    },
    400,
    401,
)
JWS_ERRORS = _declared(
    {
        **{k: v["description"] for k, v in CREATE_ERRORS.items() if isinstance(k, int)},
        400: "Invalid token or config: a malformed JWS, one whose signature, iss or aud does "
        "not match the app's registered public key (or the app has none), or config problems "
        "named by their JSON path under `token.`",
    },
    400,
    401,
)
PARTNER_ERRORS = _declared(
    {401: "Missing, malformed or expired access token", 403: "Not a partner token"}
)


def _sync(runtime: Runtime) -> TelemetrySync:
    sync = runtime.telemetry
    if sync is None:
        raise FlottaError("streaming telemetry is not running", status=503, key="unavailable")
    return sync


@asynccontextmanager
async def _one_at_a_time(sync: TelemetrySync, client_id: str) -> AsyncIterator[None]:
    try:
        await sync.acquire(client_id)
    except ConfigBusy as exc:
        raise ConfigInProgress(
            "another fleet_telemetry_config call of this app is still running; "
            "send configs one at a time (Tesla allows one concurrent call per app)",
            headers={"retry-after": "1"},
        ) from exc
    try:
        yield
    finally:
        await sync.release(client_id)


async def _check_request(runtime: Runtime, who: Principal, config: TelemetryConfig) -> None:
    """What validation alone cannot see: the token's scopes, whether the server may connect to
    the hostname (flotta.outbound) and whether it is reachable."""
    located = service.location_fields(config)
    if located and service.LOCATION_SCOPE not in who.scopes:
        raise MissingScopes(
            f"fields {', '.join(located)} stream the car's location: "
            "they need the vehicle_location scope"
        )
    addresses: tuple[str, ...] = ()
    if config.hostname:
        try:
            addresses = await runtime.outbound.addresses(config.hostname, config.port)
        except DestinationRefused as exc:
            raise TelemetryConfigError([ConfigProblem("config.hostname", str(exc))]) from None
    settings = runtime.settings.telemetry
    if settings.check_reachable:
        problem = await check_reachable(
            config.hostname, config.port, settings.reachable_timeout_s, addresses
        )
        if problem is not None:
            raise TelemetryConfigError(
                [ConfigProblem("config.hostname", f"{problem} (a car could not stream there)")]
            )


async def _key_paired(runtime: Runtime, who: Principal, vehicle_config: dict[str, Any]) -> bool:
    first_party = await owners_tool(who, runtime)
    public_key = None
    if not first_party:
        async with runtime.sessions() as session:
            public_key = await TelemetryRepository(session).app_public_key(who.client_id)
    return service.is_key_paired(vehicle_config, public_key, first_party=first_party)


async def _targets(
    runtime: Runtime, who: Principal, vins: Sequence[str]
) -> tuple[list[Target], list[str]]:
    """The listed vehicles this token may configure, and the VINs it cannot reach."""
    user = await owner_of(who, runtime)
    driven = await runtime.directory.driven_by(user.id)
    targets: list[Target] = []
    not_found: list[str] = []
    for vin in vins:
        record = await runtime.directory.vehicle(vin)
        mine = record is not None and (record.owner_id == user.id or record.id in driven)
        if record is None or not mine or not may_reach(who, record):
            not_found.append(vin)
            continue
        paired = await _key_paired(runtime, who, record.config)
        firmware = await firmware_of(runtime, record)
        targets.append(Target(record.vin, firmware, paired, record.model))
    return targets, not_found


async def _apply(
    runtime: Runtime, who: Principal, config: TelemetryConfig, *, signed: bool
) -> Response:
    await _check_request(runtime, who, config)
    sync = _sync(runtime)
    async with _one_at_a_time(sync, who.client_id):
        targets, not_found = await _targets(runtime, who, config.vins)
        async with runtime.sessions() as session, session.begin():
            result = await service.apply_config(
                session,
                client_id=who.client_id,
                config=config,
                targets=targets,
                not_found=not_found,
                signed=signed,
                now=runtime.clock.now(),
            )
        await sync.push_configs(result.applied)
    return envelope(result.to_json())


def _limits() -> ConfigLimits:
    return ConfigLimits()


@router.post(f"{VEHICLES}/fleet_telemetry_config", responses=CREATE_ERRORS)
async def create_config(
    request: Request, runtime: RuntimeDep, who: Principal = Depends(DeviceData)
) -> Response:
    """Stream `config.fields` from each listed vehicle to `hostname:port` (unsigned JSON)."""
    await owner_of(who, runtime)  # partner tokens configure nothing: 403 before validation
    body = await json_object(request)
    config = validate_config(body, limits=_limits(), now=runtime.clock.now())
    return await _apply(runtime, who, config, signed=False)


@router.post(f"{VEHICLES}/fleet_telemetry_config_jws", responses=JWS_ERRORS)
async def create_config_jws(
    request: Request, runtime: RuntimeDep, who: Principal = Depends(DeviceData)
) -> Response:
    """The same, with the config as the claims of a Tesla.SS256 JWS from the app's key."""
    await owner_of(who, runtime)
    body = await json_object(request)
    async with runtime.sessions() as session:
        key = await TelemetryRepository(session).app_public_key(who.client_id)
    verified = verify_token(body.get("token"), key)
    config = validate_config_claims(
        body.get("vins"), verified.claims, limits=_limits(), now=runtime.clock.now()
    )
    return await _apply(runtime, who, config, signed=True)


@router.get(f"{VEHICLES}/{{vehicle_tag}}/fleet_telemetry_config", responses=errors(401, 403, 404))
async def get_config(
    vehicle_tag: VehicleTag, runtime: RuntimeDep, who: Principal = Depends(DeviceData)
) -> Response:
    """The app's config on the vehicle: Tesla's synced/config/limit_reached/key_paired, plus
    Flotta's version, status (pending, synced, error), timestamps and the car's error."""
    record = await vehicle_for(who, runtime, vehicle_tag)
    paired = await _key_paired(runtime, who, record.config)
    async with runtime.sessions() as session:
        state = await service.get_config(session, who.client_id, record.vin)
        limit = await service.limit_reached(session, who.client_id, record.vin)
    return envelope(service.config_view(state, key_paired=paired, limit=limit))


@router.delete(
    f"{VEHICLES}/{{vehicle_tag}}/fleet_telemetry_config", responses=errors(401, 403, 404)
)
async def delete_config(
    vehicle_tag: VehicleTag, runtime: RuntimeDep, who: PrincipalDep
) -> Response:
    """Stop the app's stream from the vehicle; a partner token may delete on any vehicle."""
    if not who.partner and service.DATA_SCOPE not in who.scopes:
        raise MissingScopes(f"this endpoint needs {service.DATA_SCOPE} or a partner token")
    if who.partner:
        found = await runtime.directory.vehicle(vehicle_tag)
        if found is None:
            raise NotFound(f"no vehicle {vehicle_tag!r}")
        vin = found.vin
    else:
        vin = (await vehicle_for(who, runtime, vehicle_tag)).vin
    async with runtime.sessions() as session, session.begin():
        removed = await service.delete_config(session, who.client_id, vin)
    if removed is not None:
        await _sync(runtime).push_removed([removed])
    return envelope({"updated_vehicles": 1 if removed is not None else 0})


@router.get(f"{VEHICLES}/{{vehicle_tag}}/fleet_telemetry_errors", responses=errors(401, 403, 404))
async def vehicle_errors(
    vehicle_tag: VehicleTag, runtime: RuntimeDep, who: Principal = Depends(DeviceData)
) -> Response:
    """Errors the vehicle reported while streaming for this app, newest first."""
    record = await vehicle_for(who, runtime, vehicle_tag)
    async with runtime.sessions() as session:
        rows = await TelemetryRepository(session).errors_of(who.client_id, record.vin)
    return envelope({"fleet_telemetry_errors": service.error_entries(rows)})


@router.get(f"{PARTNER}/fleet_telemetry_errors", responses=PARTNER_ERRORS)
async def partner_errors(
    runtime: RuntimeDep,
    who: PartnerDep,
    domain: Annotated[str | None, Query(description="Accepted for compatibility")] = None,
) -> Response:
    """Every error cars reported while streaming for the app, newest first."""
    async with runtime.sessions() as session:
        rows = await TelemetryRepository(session).errors_of(who.client_id)
    return envelope(service.error_entries(rows))


@router.get(f"{PARTNER}/fleet_telemetry_error_vins", responses=PARTNER_ERRORS)
async def partner_error_vins(runtime: RuntimeDep, who: PartnerDep) -> Response:
    """The VINs with streaming errors for the app."""
    async with runtime.sessions() as session:
        vins = await TelemetryRepository(session).error_vins(who.client_id)
    return envelope(vins)
