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

import uvicorn
from sqlalchemy.ext.asyncio import AsyncSession

from flotta.app import create_app
from flotta.auth.tokens import OWNER_SCOPES
from flotta.accounts.demo import seed_demo_accounts
from flotta.clock import Clock
from flotta.devices.credentials import hash_credential, new_credential
from flotta.devices.repository import VehicleRepository
from flotta.devices.service import ensure_owner, provision_vehicle
from flotta.gateway.endpoints import DEVICE_PATH
from flotta.oauth.demo import seed_demo_oauth
from flotta.portal.web import PORTAL
from flotta.runtime import Runtime
from flotta.settings import Settings
from flotta.sim.fleet import DeviceIdentity, SimFleet, load_identities, save_identities
from flotta.sim.vehicle_models import MODELS, get_model, make_vin

DEMO_OWNER = "owner@flotta.demo"
DEMO_MODELS = ("model3_lr", "modely", "models_plaid", "cybertruck")
CREDENTIALS_FILE = "sim-credentials.json"


@dataclass
class DemoHandle:
    """A running demo: what `demo.json` says, plus the pieces tests reach into."""

    runtime: Runtime
    fleet: SimFleet
    info: dict[str, Any]
    server: uvicorn.Server

    def request_stop(self) -> None:
        """Stop as Ctrl-C would: uvicorn drains, then the lifespan closes the runtime."""
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
                config={"model_code": model.car_type},
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
    return owner.uuid, identities


def demo_info(
    runtime: Runtime,
    subject: str,
    identities: list[DeviceIdentity],
    oauth: dict[str, Any] | None = None,
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
        "energy_sites": [],
    }


def write_demo_json(data_dir: Path, info: dict[str, Any]) -> Path:
    path = data_dir / "demo.json"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(info, indent=2) + "\n")
    os.chmod(tmp, 0o600)
    tmp.replace(path)
    return path


async def start_fleet(runtime: Runtime, speed: float) -> tuple[SimFleet, dict[str, Any]]:
    """Provision, connect the simulated fleet, set the scene, and return demo.json's content."""
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
    set_scene(fleet)
    fleet.start()
    await fleet.wait_connected(timeout_s=15)
    return fleet, demo_info(runtime, subject, identities, oauth)


def set_scene(fleet: SimFleet) -> None:
    """Give the demo something to watch: one car charging at home, one driving."""
    if fleet.devices:
        home_charger = fleet.devices[0].vehicle
        home_charger.soc = 0.3  # low enough to charge for hours, even on a fast clock
        home_charger.plug_in("ac")
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
    config = uvicorn.Config(
        app,
        log_level="warning",
        lifespan="on",
        ws_max_size=settings.gateway.max_frame_bytes,
        ws_per_message_deflate=False,
    )
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if serving.done():
            await serving
            raise RuntimeError("the server stopped before it started")
        await asyncio.sleep(0.01)
    runtime: Runtime = app.state.runtime
    fleet, info = await start_fleet(runtime, speed)
    write_demo_json(settings.data_dir, info)
    if handle_out is not None:
        handle_out.append(DemoHandle(runtime, fleet, info, server))
    if ready is not None:
        ready.set()
    try:
        await serving
    finally:
        await fleet.stop()
        with contextlib.suppress(OSError):
            sock.close()
    return info


__all__ = ["MODELS", "DemoHandle", "serve_demo"]
