"""`flotta demo`: server, gateway and a simulated fleet in one process, ready for clients."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from flotta.accounts.demo import seed_demo_accounts
from flotta.app import create_app
from flotta.auth.scopes import OWNER_SCOPES
from flotta.clock import Clock
from flotta.devices.credentials import hash_credential, new_credential
from flotta.devices.repository import VehicleRepository
from flotta.devices.service import ensure_owner, provision_vehicle
from flotta.energy.demo import (
    backfill_demo_history,
    build_sim_site,
    consent_demo_sites,
    provision_demo_sites,
)
from flotta.energy.link import SITE_PATH
from flotta.gateway.endpoints import DEVICE_PATH
from flotta.oauth.demo import seed_demo_oauth
from flotta.portal.web import PORTAL
from flotta.runtime import Runtime
from flotta.server import FlottaServer, server_config
from flotta.settings import Settings
from flotta.sim.energy_fleet import SiteFleet, load_site_identities, save_site_identities
from flotta.sim.fleet import DeviceIdentity, SimFleet, load_identities, save_identities
from flotta.sim.vehicle_models import MODELS, get_model, make_vin

DEMO_OWNER = "owner@flotta.demo"
DEMO_MODELS = ("model3_lr", "modely", "models_plaid", "cybertruck")
CREDENTIALS_FILE = "sim-credentials.json"
SITE_CREDENTIALS_FILE = "sim-energy-credentials.json"


@dataclass
class DemoHandle:
    """A running demo: what `demo.json` says, plus the pieces tests reach into."""

    runtime: Runtime
    fleet: SimFleet
    info: dict[str, Any]
    server: FlottaServer
    sites: SiteFleet | None = None

    def request_stop(self) -> None:
        """Stop as Ctrl-C would: streams end, uvicorn drains, then the lifespan closes the
        runtime."""
        self.server.should_exit = True


def bind_socket(host: str, port: int) -> socket.socket:
    """Bind before starting, so `--port 0` yields a real port we can print and write."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY on accepted connections only when the
    # listener says so, and without it every keep-alive answer waits ~40 ms on Nagle.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.set_inheritable(True)
    return sock


# The demo owner has paired the sandbox's apps' virtual keys on every demo car (there is no
# phone to pair them with): fleet_status lists them as paired, and telemetry configs are not
# skipped as `missing_key`.
DEMO_PAIRING = {"key_paired": True}


async def provision_demo(
    session: AsyncSession,
    settings: Settings,
    clock: Clock,
    count: int,
    known: list[DeviceIdentity],
    first_serial: int = 100_000,
) -> tuple[str, list[DeviceIdentity]]:
    """Ensure the demo owner and `count` vehicles exist; return its subject and identities."""
    owner = await ensure_owner(session, DEMO_OWNER, "Demo Owner", clock)
    by_vin = {i.vin: i for i in known}
    repo = VehicleRepository(session)
    identities: list[DeviceIdentity] = []
    for index in range(count):
        model = get_model(DEMO_MODELS[index % len(DEMO_MODELS)])
        vin = make_vin(model, first_serial + index)
        existing = await repo.by_vin(vin)
        if existing is None:
            made = await provision_vehicle(
                session,
                owner=owner,
                vin=vin,
                model=model.key,
                display_name=f"{model.display.split()[0]} {model.display.split()[1]} {index + 1}",
                option_codes=model.option_codes,
                config={"model_code": model.car_type, **DEMO_PAIRING},
                secret_key=settings.secret_key,
                clock=clock,
            )
            identities.append(DeviceIdentity(vin, model.key, made.credential))
        elif vin in by_vin:
            identities.append(by_vin[vin])
        else:
            # The device lost its credential: issue a new one, as a workshop would.
            credential = new_credential(vin)
            existing.credential_hash = hash_credential(settings.secret_key, credential)
            identities.append(DeviceIdentity(vin, existing.model, credential))
        if existing is not None:
            existing.config = {**existing.config, **DEMO_PAIRING}  # demo dirs made before it
    return owner.uuid, identities


def demo_info(
    runtime: Runtime,
    subject: str,
    identities: list[DeviceIdentity],
    oauth: dict[str, Any] | None = None,
    sites: list[int] | None = None,
) -> dict[str, Any]:
    """demo.json: base URL, tokens, the demo app's credentials and token URL, VINs."""
    oauth = oauth or {}
    client_id = oauth.get("client_id") or "flotta-demo"
    token = runtime.tokens.mint(subject, OWNER_SCOPES, client_id=client_id)
    return {
        "base_url": runtime.settings.public_base_url,
        "access_token": token,
        "refresh_token": oauth.get("refresh_token"),
        "client_id": oauth.get("client_id"),
        "client_secret": oauth.get("client_secret"),
        "token_url": oauth.get("token_url"),
        "portal_url": f"{runtime.settings.public_base_url}{PORTAL}/",
        "developer": oauth.get("developer"),
        "owner": oauth.get("owner"),
        "vehicles": [i.vin for i in identities],
        "energy_sites": sites or [],
    }


def write_demo_json(data_dir: Path, info: dict[str, Any]) -> Path:
    path = data_dir / "demo.json"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(info, indent=2) + "\n")
    os.chmod(tmp, 0o600)
    tmp.replace(path)
    return path


async def start_fleet(runtime: Runtime, speed: float) -> tuple[SimFleet, SiteFleet, dict[str, Any]]:
    """Provision, connect the simulated fleet and homes, set the scene; return demo.json."""
    settings = runtime.settings
    creds_path = settings.data_dir / CREDENTIALS_FILE
    async with runtime.sessions() as session, session.begin():
        subject, identities = await provision_demo(
            session, settings, runtime.clock, settings.sim.vehicles, load_identities(creds_path)
        )
        developer, people = await seed_demo_accounts(session, runtime, DEMO_OWNER)
        oauth = await seed_demo_oauth(session, runtime, subject, developer.id)
        oauth.update(people)
    save_identities(creds_path, identities)
    runtime.directory.forget()
    url = settings.public_base_url.replace("http", "ws", 1) + DEVICE_PATH
    fleet = SimFleet.configured(identities, url=url, sim=settings.sim, speed=speed)
    sites = await start_sites(runtime, fleet, oauth.get("client_id"))
    set_scene(fleet, sites)
    fleet.start()
    sites.start()
    await fleet.wait_connected(timeout_s=15)
    await sites.wait_connected(timeout_s=15)
    site_ids = [s.site_id for s in sites.sites]
    return fleet, sites, demo_info(runtime, subject, identities, oauth, site_ids)


async def start_sites(runtime: Runtime, fleet: SimFleet, client_id: str | None) -> SiteFleet:
    """Provision the demo homes, back-fill their history and build their gateways."""
    settings = runtime.settings
    path = settings.data_dir / SITE_CREDENTIALS_FILE
    url = settings.public_base_url.replace("http", "ws", 1) + SITE_PATH
    async with runtime.sessions() as session, session.begin():
        owner = await ensure_owner(session, DEMO_OWNER, "Demo Owner", runtime.clock)
        made = await provision_demo_sites(
            session, owner, settings.secret_key, runtime.clock, load_site_identities(path)
        )
        sims = [
            build_sim_site(site, identity, url=url, clock=fleet.clock, seed=settings.sim.seed)
            for site, identity in made
        ]
        for sim in sims:
            await backfill_demo_history(session, sim, fleet.clock.now())
        await consent_demo_sites(session, owner.id, client_id, [site.id for site, _ in made])
    save_site_identities(path, [identity for _, identity in made])
    return SiteFleet(sims)


def set_scene(fleet: SimFleet, sites: SiteFleet | None = None) -> None:
    """Give the demo something to watch: one car charging at home, one driving."""
    if fleet.devices:
        home_charger = fleet.devices[0].vehicle
        home_charger.soc = 0.3  # low enough to charge for hours, even on a fast clock
        home_charger.plug_in("ac")
        walls = [s.wall for s in (sites.sites if sites else []) if s.wall is not None]
        if walls:
            walls[0].plug(home_charger)  # it charges from the solar home's Wall Connector
    if len(fleet.devices) > 1:
        fleet.devices[1].vehicle.start_drive()


async def serve_demo(
    settings: Settings,
    *,
    speed: float = 1.0,
    ready: asyncio.Event | None = None,
    handle_out: list[DemoHandle] | None = None,
) -> dict[str, Any]:
    """Run until the server stops; `ready` is set once demo.json is written."""
    sock = bind_socket(settings.host, settings.port)
    port = sock.getsockname()[1]
    settings = settings.model_copy(update={"port": port})
    app = create_app(settings)
    server = FlottaServer(server_config(app, settings, log_level="warning", lifespan="on"), app)
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if serving.done():
            await serving
            raise RuntimeError("the server stopped before it started")
        await asyncio.sleep(0.01)
    runtime: Runtime = app.state.runtime
    fleet, sites, info = await start_fleet(runtime, speed)
    write_demo_json(settings.data_dir, info)
    if handle_out is not None:
        handle_out.append(DemoHandle(runtime, fleet, info, server, sites))
    if ready is not None:
        ready.set()
    try:
        await serving
    finally:
        await sites.stop()
        await fleet.stop()
        with contextlib.suppress(OSError):
            sock.close()
    return info


__all__ = ["MODELS", "DemoHandle", "serve_demo"]
