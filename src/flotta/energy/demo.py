"""The demo's two homes: one with battery and solar, one solar-only with a Wall Connector.

Provisioning is idempotent (sites are found again by name), and each start back-fills the
history since the last stored interval, at most a few days, so charts have something to show.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from flotta.accounts.models import User
from flotta.clock import Clock
from flotta.energy.credentials import new_site_credential, site_credential_hash
from flotta.energy.models import EnergySite
from flotta.energy.repository import EnergyHistoryRepository, EnergySiteRepository
from flotta.energy.service import provision_site, site_ref
from flotta.oauth.repository import OAuthRepository
from flotta.sim.energy_device import SimSite
from flotta.sim.energy_fleet import SiteIdentity
from flotta.sim.energy_meter import BackupEvent, backfill, interval_start
from flotta.sim.energy_site import SiteSpec, SiteState
from flotta.sim.energy_sun import zone
from flotta.sim.energy_wall import WallConnector

BACKFILL_DAYS = 3  # of history, counted back to a local midnight (see backfill_demo_history)
CAR_CHARGING_W = 7_680.0  # 32 A at 240 V: a Wall Connector on a typical circuit


@dataclass(frozen=True)
class DemoSite:
    name: str
    time_zone: str
    spec: dict[str, Any] = field(default_factory=dict)


DEMO_SITES = (
    DemoSite(
        "Casa Bologna",
        "Europe/Rome",
        {
            "latitude": 44.4949,
            "longitude": 11.3426,
            "solar_kwp": 6.0,
            "battery_wh": 27_000,
            "battery_count": 2,
            "max_charge_w": 10_000,
            "max_discharge_w": 10_000,
            "base_load_w": 500,
            "wall_connectors": [],
        },
    ),
    DemoSite(
        "Fremont Solar Garage",
        "America/Los_Angeles",
        {
            "latitude": 37.4925,
            "longitude": -121.9447,
            "solar_kwp": 8.2,
            "battery_wh": 0,
            "battery_count": 0,
            "max_charge_w": 0,
            "max_discharge_w": 0,
            "base_load_w": 700,
            "wall_connectors": [
                {"din": "1734411-02-F--PGT23104912345", "device_id": "wc-fremont-1"}
            ],
        },
    ),
)


def neighbourhood(count: int, prefix: str) -> list[DemoSite]:
    """`count` homes named `<prefix> 1…`, shaped after the demo's homes in turn."""
    models = [DEMO_SITES[n % len(DEMO_SITES)] for n in range(count)]
    return [DemoSite(f"{prefix} {n + 1}", m.time_zone, dict(m.spec)) for n, m in enumerate(models)]


async def provision_demo_sites(
    session: AsyncSession,
    owner: User,
    secret_key: str,
    clock: Clock,
    known: list[SiteIdentity],
    homes: Sequence[DemoSite] = DEMO_SITES,
) -> list[tuple[EnergySite, SiteIdentity]]:
    """Ensure the owner's `homes` exist (found by name); return each with its identity."""
    by_id = {i.site_id: i for i in known}
    existing = {s.site_name: s for s in await EnergySiteRepository(session).owned_by(owner.id)}
    out: list[tuple[EnergySite, SiteIdentity]] = []
    for demo in homes:
        site = existing.get(demo.name)
        if site is None:
            made = await provision_site(
                session,
                owner=owner,
                site_name=demo.name,
                time_zone_name=demo.time_zone,
                spec=dict(demo.spec),
                secret_key=secret_key,
                clock=clock,
                installed_at=clock.now() - timedelta(days=400),
            )
            out.append((made.site, SiteIdentity(made.site.id, made.credential)))
        elif site.id in by_id:
            out.append((site, by_id[site.id]))
        else:
            credential = new_site_credential(site.id)  # the gateway lost it: issue a new one
            site.credential_hash = site_credential_hash(secret_key, credential)
            out.append((site, SiteIdentity(site.id, credential)))
    return out


def site_spec(site: EnergySite, seed: int) -> SiteSpec:
    spec = site.spec

    def num(key: str) -> float:
        value = spec.get(key, 0)
        return float(value) if isinstance(value, int | float) else 0.0

    return SiteSpec(
        latitude=num("latitude"),
        longitude=num("longitude"),
        time_zone=site.time_zone,
        solar_kwp=num("solar_kwp"),
        battery_wh=num("battery_wh"),
        max_charge_w=num("max_charge_w"),
        max_discharge_w=num("max_discharge_w"),
        base_load_w=num("base_load_w") or 600.0,
        seed=seed * 1_000_003 + site.id % 1_000_003,
    )


def build_sim_site(
    site: EnergySite, identity: SiteIdentity, *, url: str, clock: Clock, seed: int
) -> SimSite:
    """The site's simulated gateway, half full, with its Wall Connector if it has one."""
    spec = site_spec(site, seed)
    walls = site.spec.get("wall_connectors") or []
    wall = None
    if isinstance(walls, list) and walls and isinstance(walls[0], dict):
        wall = WallConnector(str(walls[0].get("din")), str(walls[0].get("device_id")))
    return SimSite(
        site_id=site.id,
        credential=identity.credential,
        spec=spec,
        clock=clock,
        url=url,
        config={"site_name": site.site_name, "time_zone": site.time_zone},
        state=SiteState(energy_wh=spec.battery_wh * 0.5),
        wall=wall,
    )


def _midday_charging(time_zone: str) -> Any:
    """The household's habit in the back-filled days: the car charges from noon to three."""
    tz = zone(time_zone)

    def draw(when: datetime) -> float:
        return CAR_CHARGING_W if 12 <= when.astimezone(tz).hour < 15 else 0.0

    return draw


async def backfill_demo_history(session: AsyncSession, sim: SimSite, now: datetime) -> int:
    """Store plausible history up to the current interval; returns intervals written."""
    repo = EnergyHistoryRepository(session)
    end = interval_start(now)
    latest = await repo.latest_start(sim.site_id)
    # From the site's local midnight: a charging session or a day's totals are never cut in
    # two by where the history happens to begin (a demo started at 13:00 would otherwise
    # show its first midday session as 2 hours, not 3).
    first_day = (end - timedelta(days=BACKFILL_DAYS)).astimezone(zone(sim.spec.time_zone))
    start = first_day.replace(hour=0, minute=0, second=0, microsecond=0).astimezone(end.tzinfo)
    if latest is not None:
        start = max(start, latest + timedelta(minutes=5))
    outages: tuple[tuple[datetime, datetime], ...] = ()
    if sim.spec.has_battery and latest is None:
        # One evening outage two days ago, so backup history has an event to show.
        local = (end - timedelta(days=2)).astimezone(zone(sim.spec.time_zone))
        begin = local.replace(hour=18, minute=20, second=0, microsecond=0).astimezone(end.tzinfo)
        outages = ((begin, begin + timedelta(minutes=45)),)
        await repo.add_backup_event(sim.site_id, BackupEvent(begin, 45 * 60))
    wall = _midday_charging(sim.spec.time_zone) if sim.wall is not None else None
    intervals = backfill(sim.spec, sim.settings, sim.state, start, end, wall, outages)
    sim.last = end  # the live simulator carries on from where the history stops
    return await repo.add_intervals(sim.site_id, intervals)


async def consent_demo_sites(
    session: AsyncSession, owner_id: int, client_id: str | None, site_ids: list[int]
) -> None:
    """Add the demo homes to the demo app's consent, as the owner would on the consent page."""
    repo = OAuthRepository(session)
    app = await repo.client(client_id) if client_id else None
    grant = await repo.active_grant(owner_id, app.id) if app is not None else None
    if grant is None:
        return
    devices = [str(d) for d in grant.devices] if isinstance(grant.devices, list) else []
    grant.devices = sorted(set(devices) | {site_ref(s) for s in site_ids})
