"""`flotta sim`: a simulated fleet in its own process, connected to a remote gateway."""

from __future__ import annotations

import asyncio

from rich.console import Console

from flotta.clock import ScaledClock
from flotta.db.engine import make_engine, make_sessionmaker
from flotta.db.migrate import upgrade_to_head
from flotta.demo import provision_demo
from flotta.settings import Settings
from flotta.sim.fleet import DeviceIdentity, SimFleet, load_identities, save_identities

# A separate file and serial range, so a remote fleet never takes over the demo's own cars.
REMOTE_CREDENTIALS_FILE = "sim-remote-credentials.json"
REMOTE_FIRST_SERIAL = 200_000


async def _identities(settings: Settings) -> list[DeviceIdentity]:
    """Provision (or reuse) device credentials in the database the gateway uses."""
    engine = make_engine(settings.database_url)
    clock = ScaledClock()
    try:
        await upgrade_to_head(engine)
        sessions = make_sessionmaker(engine)
        path = settings.data_dir / REMOTE_CREDENTIALS_FILE
        async with sessions() as session, session.begin():
            _, identities = await provision_demo(
                session,
                settings,
                clock,
                settings.sim.vehicles,
                load_identities(path),
                first_serial=REMOTE_FIRST_SERIAL,
            )
        save_identities(path, identities)
        return identities
    finally:
        await engine.dispose()


async def run_remote_fleet(
    settings: Settings, connect: str, *, speed: float, tick_s: float, console: Console
) -> None:
    """Connect the fleet and keep it running until interrupted."""
    identities = await _identities(settings)
    url = connect.rstrip("/")
    if not url.endswith("/gateway/v1/connect"):
        url += "/gateway/v1/connect"
    fleet = SimFleet.configured(identities, url=url, sim=settings.sim, speed=speed, tick_s=tick_s)
    fleet.start()
    try:
        try:
            # First connects are spread at 250/s, so allow for that on top of a minute.
            await fleet.wait_connected(timeout_s=60 + len(identities) / 250)
            console.print(f"{len(identities)} simulated vehicles connected to {url}")
        except TimeoutError as exc:
            # The cars keep retrying with back-off; say so rather than give up.
            console.print(f"[yellow]{exc}; the rest keep retrying[/yellow]", soft_wrap=True)
        await asyncio.Event().wait()
    finally:
        await fleet.stop()
