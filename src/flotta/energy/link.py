"""The energy-site WebSocket endpoint; the sites' hub is the Runtime's `energy`."""

from __future__ import annotations

from fastapi import APIRouter, WebSocket
from starlette.websockets import WebSocketDisconnect

from flotta.devices.credentials import matches
from flotta.energy.credentials import site_of
from flotta.energy.repository import EnergySiteRepository
from flotta.gateway.link_io import link_io
from flotta.runtime import Runtime

router = APIRouter()

SITE_PATH = "/gateway/v1/energy/connect"


@router.websocket(SITE_PATH)
async def site_link(websocket: WebSocket) -> None:
    """An energy site's persistent link; `Authorization: Bearer <site credential>`."""
    runtime: Runtime = websocket.app.state.runtime
    credential = websocket.headers.get("authorization", "").removeprefix("Bearer ").strip()
    site_id = site_of(credential)
    stored = None
    if site_id is not None:
        async with runtime.sessions() as session:
            site = await EnergySiteRepository(session).by_id(site_id)
            stored = site.credential_hash if site is not None else None
    await websocket.accept()
    if (
        site_id is None
        or stored is None
        or not matches(runtime.settings.secret_key, credential, stored)
    ):
        await websocket.close(code=4401, reason="invalid device credential")
        return

    io = link_io(websocket)
    try:
        await runtime.energy.serve(site_id, io.receive, io.send, io.close)
    except (WebSocketDisconnect, RuntimeError):
        return
