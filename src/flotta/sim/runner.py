"""`flotta sim`: a simulated fleet and homes in their own process, linked to a remote gateway."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable

from rich.console import Console

from flotta.clock import ScaledClock
from flotta.db.migrate import migrated
from flotta.demo import DEMO_OWNER, provision_demo
from flotta.devices.service import ensure_owner
from flotta.energy.demo import build_sim_site, neighbourhood, provision_demo_sites
from flotta.energy.link import SITE_PATH
from flotta.energy.models import EnergySite
from flotta.gateway.endpoints import DEVICE_PATH
from flotta.settings import Settings
from flotta.sim.energy_fleet import (
    SiteFleet,
    SiteIdentity,
    load_site_identities,
    save_site_identities,
)
from flotta.sim.fleet import DeviceIdentity, SimFleet, load_identities, save_identities

# Separate files, serials and names, so a remote fleet never takes over the demo's own devices.
REMOTE_CREDENTIALS_FILE = "sim-remote-credentials.json"
REMOTE_SITE_CREDENTIALS_FILE = "sim-remote-energy-credentials.json"
REMOTE_FIRST_SERIAL = 200_000
REMOTE_HOME_NAME = "Remote Home"

Homes = list[tuple[EnergySite, SiteIdentity]]


async def _provision(settings: Settings, energy_sites: int) -> tuple[list[DeviceIdentity], Homes]:
    """Provision (or reuse) device credentials in the database the gateway uses."""
    clock = ScaledClock()
    cars_path = settings.data_dir / REMOTE_CREDENTIALS_FILE
    homes_path = settings.data_dir / REMOTE_SITE_CREDENTIALS_FILE
    async with (
        migrated(settings.database_url) as sessions,
        sessions() as session,
        session.begin(),
    ):
        _, identities = await provision_demo(
            session,
            settings,
            clock,
            settings.sim.vehicles,
            load_identities(cars_path),
            first_serial=REMOTE_FIRST_SERIAL,
        )
        homes: Homes = []
        if energy_sites:
            owner = await ensure_owner(session, DEMO_OWNER, "Demo Owner", clock)
            wanted = neighbourhood(energy_sites, REMOTE_HOME_NAME)
            known = load_site_identities(homes_path)
            homes = await provision_demo_sites(
                session, owner, settings.secret_key, clock, known, wanted
            )
    save_identities(cars_path, identities)
    if homes:
        save_site_identities(homes_path, [identity for _, identity in homes])
    return identities, homes


async def run_remote_fleet(
    settings: Settings,
    connect: str,
    *,
    speed: float,
    tick_s: float,
    console: Console,
    energy_sites: int = 0,
) -> None:
    """Connect the vehicles and homes and keep them running until interrupted."""
    identities, homes = await _provision(settings, energy_sites)
    base = connect.rstrip("/").removesuffix(DEVICE_PATH)
    if base.startswith(("http://", "https://")):
        base = "ws" + base.removeprefix("http")  # the API's own URL names the same server
    fleet = SimFleet.configured(
        identities, url=base + DEVICE_PATH, sim=settings.sim, speed=speed, tick_s=tick_s
    )
    sims = [
        build_sim_site(
            site, identity, url=base + SITE_PATH, clock=fleet.clock, seed=settings.sim.seed
        )
        for site, identity in homes
    ]
    sites = SiteFleet(sims)
    fleet.start()
    sites.start()
    try:
        # First connects are spread at 250/s, so allow for that on top of a minute.
        await _report(fleet.wait_connected(60 + len(identities) / 250), console)
        await _report(sites.wait_connected(60), console)
        console.print(
            f"{len(identities)} simulated vehicles and {len(sims)} energy sites linked to {base}"
        )
        await asyncio.Event().wait()
    finally:
        await sites.stop()
        await fleet.stop()


async def _report(connecting: Awaitable[None], console: Console) -> None:
    """Wait for links; on a timeout say so, for the devices keep retrying with back-off."""
    try:
        await connecting
    except TimeoutError as exc:
        console.print(f"[yellow]{exc}; the rest keep retrying[/yellow]", soft_wrap=True)
