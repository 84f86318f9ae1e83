"""Energy-site logic: provisioning, owner checks, history answers and settings writes.

Callers own the commit; nothing here knows about HTTP.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from flotta.accounts.models import User
from flotta.clock import Clock
from flotta.energy.credentials import new_site_credential, site_credential_hash
from flotta.energy.history import (
    HistoryError,
    buckets,
    charge_sessions,
    energy_entry,
    parse_instant,
    sum_into,
    time_zone,
)
from flotta.energy.models import EnergySite
from flotta.energy.repository import EnergyHistoryRepository, EnergySiteRepository
from flotta.errors import InvalidRequest, NotFound
from flotta.oauth.repository import OAuthRepository
from flotta.sim.energy_meter import INTERVAL_S
from flotta.sim.energy_settings import SettingError, validate_patch

# A consent grant's device reference for a site, beside `vehicle:<fleet id>`.
SITE_REF_PREFIX = "energy_site:"
# energy_site_id values look like Tesla's: large integers.
SITE_ID_BASE = 2_252_178_000_000_000
CHARGE_HISTORY_DEFAULT_DAYS = 30


@dataclass(frozen=True, slots=True)
class ProvisionedSite:
    site: EnergySite
    credential: str


async def provision_site(
    session: AsyncSession,
    *,
    owner: User,
    site_name: str,
    time_zone_name: str,
    spec: dict[str, Any],
    secret_key: str,
    clock: Clock,
    installed_at: datetime,
) -> ProvisionedSite:
    """Register a site and issue its gateway credential (shown once, stored hashed)."""
    time_zone(time_zone_name)  # refuses unknown zones before anything is stored
    repo = EnergySiteRepository(session)
    site_id = (await repo.max_id() or SITE_ID_BASE) + 1
    credential = new_site_credential(site_id)
    battery = float(spec.get("battery_wh", 0) or 0) > 0
    site = EnergySite(
        id=site_id,
        site_uid=f"STE{installed_at:%Y%m%d}-{site_id % 100_000:05d}",
        owner_id=owner.id,
        site_name=site_name,
        time_zone=time_zone_name,
        resource_type="battery" if battery else "solar",
        gateway_din=f"1232100-00-E--TG{site_id % 10**12:012d}",
        spec=spec,
        credential_hash=site_credential_hash(secret_key, credential),
        installed_at=installed_at,
        created_at=clock.now(),
    )
    await repo.add(site)
    return ProvisionedSite(site, credential)


async def site_for(session: AsyncSession, owner_id: int, site_id: int) -> EnergySite:
    """The site with this `energy_site_id` if the caller owns it; anything else is a 404."""
    site = await EnergySiteRepository(session).by_id(site_id)
    if site is None or site.owner_id != owner_id:
        raise site_absent(site_id)
    return site


def site_absent(site_id: int) -> NotFound:
    """The 404 of a site the caller may not reach, however it is out of reach."""
    return NotFound(f"no energy site {site_id} on this account", key="not_found")


def site_ref(site_id: int) -> str:
    return f"{SITE_REF_PREFIX}{site_id}"


async def consented_site_ids(session: AsyncSession, user_id: int, client_id: str) -> frozenset[int]:
    """Sites the user's active consent to this app names (`energy_site:<id>` references)."""
    repo = OAuthRepository(session)
    app = await repo.client(client_id)
    grant = await repo.active_grant(user_id, app.id) if app is not None else None
    refs = grant.devices if grant is not None and isinstance(grant.devices, list) else []
    ids = (str(r)[len(SITE_REF_PREFIX) :] for r in refs if str(r).startswith(SITE_REF_PREFIX))
    return frozenset(int(i) for i in ids if i.isdigit() and len(i) < 20)


def _bad(exc: HistoryError | SettingError) -> InvalidRequest:
    return InvalidRequest(str(exc), key="invalid_field", messages={exc.field: [str(exc)]})


@dataclass(frozen=True, slots=True)
class HistoryQuery:
    kind: str
    period: str
    start_date: str | None
    end_date: str | None
    time_zone: str | None


async def calendar_history(
    session: AsyncSession, site: EnergySite, query: HistoryQuery, now: datetime
) -> dict[str, Any]:
    """`calendar_history` for kind `energy` or `backup` (reference §4.5, §5.4)."""
    if query.kind not in ("energy", "backup"):
        raise _bad(HistoryError("kind", f"{query.kind!r} is not one of energy, backup"))
    try:
        tz = time_zone(query.time_zone or site.time_zone)
        end = parse_instant(query.end_date, "end_date", tz, now)
        start = parse_instant(query.start_date, "start_date", tz, now) if query.start_date else None
        edges = buckets(query.period, end, start, site.installed_at, tz)
    except HistoryError as exc:
        raise _bad(exc) from None
    repo = EnergyHistoryRepository(session)
    first, last = edges[0][0], edges[-1][1]
    if query.kind == "backup":
        events = await repo.backup_events(site.id, first, last)
        return {
            "events": [
                {"timestamp": e.started_at.astimezone(tz).isoformat(), "duration": e.duration_s}
                for e in events
            ],
            "total_events": len(events),
        }
    totals = sum_into(edges, await repo.intervals(site.id, first, last))
    return {
        "serial_number": site.gateway_din,
        "period": query.period,
        "installation_time_zone": site.time_zone,
        "time_series": [energy_entry(b) for b in totals],
    }


async def charge_history(
    session: AsyncSession, site: EnergySite, query: HistoryQuery, now: datetime
) -> dict[str, Any]:
    """`telemetry_history kind=charge`: wall-connector sessions in the window."""
    if query.kind != "charge":
        raise _bad(HistoryError("kind", f"{query.kind!r} is not charge"))
    try:
        tz = time_zone(query.time_zone or site.time_zone)
        end = parse_instant(query.end_date, "end_date", tz, now)
        default_start = end - timedelta(days=CHARGE_HISTORY_DEFAULT_DAYS)
        start = parse_instant(query.start_date, "start_date", tz, default_start)
    except HistoryError as exc:
        raise _bad(exc) from None
    if start > end:
        raise _bad(HistoryError("start_date", "must not be after end_date"))
    intervals = await EnergyHistoryRepository(session).intervals(site.id, start, end)
    return {"charge_history": charge_sessions(intervals, INTERVAL_S)}


# Each write endpoint: its body members, the setting each sets, and whether it needs a battery.
WRITES: dict[str, tuple[dict[str, str], bool]] = {
    "backup": ({"backup_reserve_percent": "backup_reserve_percent"}, True),
    "operation": ({"default_real_mode": "default_real_mode"}, True),
    "storm_mode": ({"enabled": "storm_mode_enabled"}, True),
    "grid_import_export": (
        {
            "disallow_charge_from_grid_with_solar_installed": (
                "disallow_charge_from_grid_with_solar_installed"
            ),
            "customer_preferred_export_rule": "customer_preferred_export_rule",
        },
        False,
    ),
    "off_grid_vehicle_charging_reserve": (
        {
            "off_grid_vehicle_charging_reserve_percent": (
                "off_grid_vehicle_charging_reserve_percent"
            )
        },
        True,
    ),
    # A site without a battery says `tou_capable: false` (render.py): nothing to schedule.
    "time_of_use_settings": ({"tou_settings": "tou_settings"}, True),
}


def settings_patch(endpoint: str, body: dict[str, Any], battery: bool) -> dict[str, Any]:
    """The validated settings a write endpoint's body asks for; 400 naming the field."""
    members, needs_battery = WRITES[endpoint]
    if needs_battery and not battery:
        raise InvalidRequest(f"{endpoint} needs a battery, and this site has none")
    # Clients send null for a member they leave alone (tesla-fleet-api's grid_import_export).
    given = {
        setting: body[member] for member, setting in members.items() if body.get(member) is not None
    }
    if not given:
        names = " or ".join(members)
        raise InvalidRequest(f"missing {names} param", messages={names: ["missing"]})
    try:
        return validate_patch(given)
    except SettingError as exc:
        field = next((m for m, s in members.items() if s == exc.field), exc.field)
        message = str(exc).replace(f"invalid {exc.field} param", f"invalid {field} param")
        raise InvalidRequest(message, key="invalid_field", messages={field: [message]}) from None
