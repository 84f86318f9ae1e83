"""A send on a link that closed meanwhile is the device being unavailable (408), not a 500."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any, cast

import pytest
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.testclient import TestClient
from starlette.websockets import WebSocket

from flotta.energy.gateway import SiteSession
from flotta.errors import SiteUnavailable, VehicleUnavailable
from flotta.gateway.link_io import LinkClosed, link_io
from flotta.gateway.protocol import FrameType
from flotta.gateway.session import DeviceSession


def test_sending_on_a_closed_starlette_socket_raises_link_closed() -> None:
    seen: list[type[BaseException]] = []

    async def endpoint(websocket: WebSocket) -> None:
        await websocket.accept()
        io = link_io(websocket)
        await io.close(1000, "bye")
        try:
            await io.send(b"late")
        except BaseException as exc:  # what a hub would see
            seen.append(type(exc))

    app = Starlette(routes=[WebSocketRoute("/link", endpoint)])
    with TestClient(app) as client, client.websocket_connect("/link") as ws:
        ws.receive()  # the close frame
    assert seen == [LinkClosed]


async def _closed(_: bytes) -> None:
    raise LinkClosed("gone")


async def _close_link(code: int, reason: str) -> None:
    return None


def test_a_vehicle_command_on_a_closed_link_is_vehicle_unavailable() -> None:
    session = DeviceSession(cast(Any, None), _closed, _close_link, datetime.now(UTC))
    with pytest.raises(VehicleUnavailable):
        asyncio.run(session.request(FrameType.COMMAND, b"", 1.0))


def test_an_energy_site_command_on_a_closed_link_is_site_unavailable() -> None:
    site = SiteSession(1, _closed, _close_link, datetime.now(UTC))
    with pytest.raises(SiteUnavailable):
        asyncio.run(site.request({"command": "x"}, 1.0))
