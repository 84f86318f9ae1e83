"""Energy-site endpoints (`/api/1/energy_sites/{energy_site_id}/…`, reference §4.5)."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response

from flotta.auth.tokens import Principal
from flotta.db.base import MAX_ROW_ID
from flotta.energy import render, service
from flotta.energy.link import router as link_router
from flotta.energy.models import EnergySite
from flotta.energy.repository import EnergySiteRepository
from flotta.energy.service import HistoryQuery
from flotta.fleet.body import json_object
from flotta.fleet.deps import RuntimeDep, owner_of, require_scopes
from flotta.fleet.errors_doc import errors
from flotta.fleet.responses import envelope
from flotta.runtime import Runtime

router = APIRouter(tags=["energy"])
router.routes.extend(link_router.routes)  # the sites' own gateway link

EnergyData = require_scopes("energy_device_data")
EnergyCmds = require_scopes("energy_cmds")
SiteId = Annotated[
    int, Path(ge=1, le=MAX_ROW_ID, description="The `energy_site_id` from /api/1/products")
]
UPDATED = {"code": 201, "message": "Updated"}
BASE = "/api/1/energy_sites/{energy_site_id}"
READ_ERRORS = errors(400, 401, 403, 404, 408)


async def reachable(who: Principal, session: AsyncSession, owner_id: int) -> frozenset[int] | None:
    """Site ids a consented third-party token may reach; None when it may reach them all."""
    if who.devices is None:
        return None
    return who.devices | await service.consented_site_ids(session, owner_id, who.client_id)


async def _site(who: Principal, runtime: Runtime, site_id: int) -> EnergySite:
    user = await owner_of(who, runtime)
    async with runtime.sessions() as session:
        allowed = await reachable(who, session, user.id)
        if allowed is not None and site_id not in allowed:
            # Outside the consent: the same 404 as an absent site or another account's.
            raise service.site_absent(site_id)
        return await service.site_for(session, user.id, site_id)


async def energy_products(request: Request, who: Principal, owner_id: int) -> list[dict[str, Any]]:
    """The account's sites this token may reach, as `/api/1/products` items."""
    runtime: Runtime = request.app.state.runtime
    async with runtime.sessions() as session:
        sites = await EnergySiteRepository(session).owned_by(owner_id)
        allowed = await reachable(who, session, owner_id) if sites else None
    shown = [site for site in sites if allowed is None or site.id in allowed]
    reports = await asyncio.gather(*(runtime.energy.report(site.id) for site in shown))
    return [render.product_item(site, report) for site, report in zip(shown, reports, strict=True)]


@router.get(f"{BASE}/live_status", responses=READ_ERRORS)
async def live_status(
    energy_site_id: SiteId,
    runtime: RuntimeDep,
    who: Principal = Depends(EnergyData),
) -> Response:
    """Power flows now: solar, battery (negative = charging), load, grid, wall connectors."""
    site = await _site(who, runtime, energy_site_id)
    return envelope(await runtime.energy.ask(site.id, "live_status", "live_status"))


@router.get(f"{BASE}/site_info", responses=READ_ERRORS)
async def site_info(
    energy_site_id: SiteId,
    runtime: RuntimeDep,
    who: Principal = Depends(EnergyData),
) -> Response:
    """The installation and the owner's current settings."""
    site = await _site(who, runtime, energy_site_id)
    settings = await runtime.energy.ask(site.id, "site_info", "settings")
    return envelope(render.site_info(site, settings))


@router.get(f"{BASE}/site_status", responses=READ_ERRORS)
async def site_status(
    energy_site_id: SiteId,
    runtime: RuntimeDep,
    who: Principal = Depends(EnergyData),
) -> Response:
    """Owner-API summary that teslajsonpy reads for battery sites (not in Fleet API docs)."""
    site = await _site(who, runtime, energy_site_id)
    hub = runtime.energy
    mirror = {
        "live_status": await hub.ask(site.id, "live_status", "live_status"),
        "settings": await hub.ask(site.id, "site_info", "settings"),
    }
    return envelope(render.site_status(site, mirror))


@router.get(f"{BASE}/calendar_history", responses=READ_ERRORS)
async def calendar_history(
    energy_site_id: SiteId,
    runtime: RuntimeDep,
    who: Principal = Depends(EnergyData),
    kind: str = Query(max_length=32),
    period: str = Query("day", max_length=16),
    start_date: str | None = Query(None, max_length=64),
    end_date: str | None = Query(None, max_length=64),
    time_zone: str | None = Query(None, max_length=64),
) -> Response:
    """Energy totals per bucket (`kind=energy`) or off-grid events (`kind=backup`)."""
    site = await _site(who, runtime, energy_site_id)
    query = HistoryQuery(kind, period, start_date, end_date, time_zone)
    async with runtime.sessions() as session:
        body = await service.calendar_history(session, site, query, runtime.clock.now())
    return envelope(body)


@router.get(f"{BASE}/telemetry_history", responses=READ_ERRORS)
async def telemetry_history(
    energy_site_id: SiteId,
    runtime: RuntimeDep,
    who: Principal = Depends(EnergyData),
    kind: str = Query(max_length=32),
    start_date: str | None = Query(None, max_length=64),
    end_date: str | None = Query(None, max_length=64),
    time_zone: str | None = Query(None, max_length=64),
) -> Response:
    """Wall Connector charging sessions (`kind=charge`)."""
    site = await _site(who, runtime, energy_site_id)
    query = HistoryQuery(kind, "day", start_date, end_date, time_zone)
    async with runtime.sessions() as session:
        body = await service.charge_history(session, site, query, runtime.clock.now())
    return envelope(body)


async def _write(
    endpoint: str, site_id: int, request: Request, runtime: Runtime, who: Principal
) -> Response:
    body = await json_object(request)
    site = await _site(who, runtime, site_id)
    patch = service.settings_patch(endpoint, body, render.has_battery(site))
    await runtime.energy.ask(site.id, "configure", "settings", settings=patch)
    return envelope(UPDATED)


WRITE_ERRORS = errors(400, 401, 403, 404, 408)


@router.post(f"{BASE}/backup", responses=WRITE_ERRORS)
async def backup(
    energy_site_id: SiteId,
    request: Request,
    runtime: RuntimeDep,
    who: Principal = Depends(EnergyCmds),
) -> Response:
    """Set the backup reserve (`backup_reserve_percent`, 0-100)."""
    return await _write("backup", energy_site_id, request, runtime, who)


@router.post(f"{BASE}/operation", responses=WRITE_ERRORS)
async def operation(
    energy_site_id: SiteId,
    request: Request,
    runtime: RuntimeDep,
    who: Principal = Depends(EnergyCmds),
) -> Response:
    """Set `default_real_mode`: self_consumption, autonomous (time-based) or backup."""
    return await _write("operation", energy_site_id, request, runtime, who)


@router.post(f"{BASE}/storm_mode", responses=WRITE_ERRORS)
async def storm_mode(
    energy_site_id: SiteId,
    request: Request,
    runtime: RuntimeDep,
    who: Principal = Depends(EnergyCmds),
) -> Response:
    """Turn Storm Watch on or off (`enabled`)."""
    return await _write("storm_mode", energy_site_id, request, runtime, who)


@router.post(f"{BASE}/grid_import_export", responses=WRITE_ERRORS)
async def grid_import_export(
    energy_site_id: SiteId,
    request: Request,
    runtime: RuntimeDep,
    who: Principal = Depends(EnergyCmds),
) -> Response:
    """Grid charging (`disallow_charge_from_grid_with_solar_installed`) and the export rule."""
    return await _write("grid_import_export", energy_site_id, request, runtime, who)


@router.post(f"{BASE}/off_grid_vehicle_charging_reserve", responses=WRITE_ERRORS)
async def off_grid_vehicle_charging_reserve(
    energy_site_id: SiteId,
    request: Request,
    runtime: RuntimeDep,
    who: Principal = Depends(EnergyCmds),
) -> Response:
    """Below this charge, an islanded site stops charging vehicles."""
    return await _write("off_grid_vehicle_charging_reserve", energy_site_id, request, runtime, who)


@router.post(f"{BASE}/time_of_use_settings", responses=WRITE_ERRORS)
async def time_of_use_settings(
    energy_site_id: SiteId,
    request: Request,
    runtime: RuntimeDep,
    who: Principal = Depends(EnergyCmds),
) -> Response:
    """Set the tariff (`tou_settings`: tariff_content_v2, tariff_content or schedule)."""
    return await _write("time_of_use_settings", energy_site_id, request, runtime, who)
