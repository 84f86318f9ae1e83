"""The device gateway's WebSocket endpoint: authenticate the device, then hand it to the hub."""

from __future__ import annotations

from fastapi import APIRouter, WebSocket
from starlette.websockets import WebSocketDisconnect

from flotta.devices.credentials import matches, vin_of
from flotta.gateway.link_io import link_io
from flotta.runtime import Runtime

router = APIRouter()

DEVICE_PATH = "/gateway/v1/connect"


@router.websocket(DEVICE_PATH)
async def device_link(websocket: WebSocket) -> None:
    """A vehicle's persistent link; `Authorization: Bearer <device credential>`."""
    runtime: Runtime = websocket.app.state.runtime
    header = websocket.headers.get("authorization", "")
    credential = header.removeprefix("Bearer ").strip()
    vin = vin_of(credential)
    record = await runtime.directory.vehicle(vin) if vin else None
    if record is None or not matches(
        runtime.settings.secret_key, credential, record.credential_hash
    ):
        await websocket.accept()
        await websocket.close(code=4401, reason="invalid device credential")
        return
    await websocket.accept()

    io = link_io(websocket)
    peer = f"{websocket.client.host}:{websocket.client.port}" if websocket.client else ""
    try:
        await runtime.hub.serve(record, io.receive, io.send, io.close, peer)
    except (WebSocketDisconnect, RuntimeError):
        # The peer vanished mid-send; the hub has already cleaned up the session.
        return
