"""The joint scenario: the demo's first car charges from the solar home's Wall Connector."""

from __future__ import annotations

import asyncio

import httpx
import websockets
from websockets.exceptions import ConnectionClosed

from flotta.energy.link import SITE_PATH
from flotta.gateway import protocol
from flotta.gateway.protocol import FrameType
from tests.energy.support import client, response, solar_site, until
from tests.live import LiveDemo


def test_live_status_shows_the_car_charging(live: LiveDemo) -> None:
    car = live.device(live.vins[0]).vehicle
    site = solar_site(live)
    with client(live) as api:

        def charging() -> dict[str, object] | None:
            status = response(api.get(f"/api/1/energy_sites/{site}/live_status"))
            walls = status["wall_connectors"]
            return status if walls and walls[0]["wall_connector_power"] > 0 else None

        status = until(charging, what="the Wall Connector to deliver power")
    wall = status["wall_connectors"][0]  # type: ignore[index]
    assert wall["vin"] == live.vins[0]
    assert wall["wall_connector_state"] == 2  # charging
    car_w = car.charge_power_kw * 1000
    assert abs(wall["wall_connector_power"] - car_w) <= 0.05 * car_w
    assert status["load_power"] >= wall["wall_connector_power"]  # type: ignore[operator]
    # No battery: what the sun does not cover comes from the grid.
    assert abs(status["solar_power"] + status["grid_power"] - status["load_power"]) < 1.0  # type: ignore[operator]


async def test_a_site_link_with_a_wrong_credential_is_closed(live: LiveDemo) -> None:
    url = live.base_url.replace("http", "ws", 1) + SITE_PATH
    headers = {"Authorization": f"Bearer fes_{solar_site(live)}_not-the-secret"}
    async with websockets.connect(url, additional_headers=headers, open_timeout=5) as ws:
        try:
            await ws.send(protocol.encode_json(FrameType.HELLO, {"config": {}}))
            await asyncio.wait_for(ws.recv(), 5)
        except ConnectionClosed as closed:
            assert closed.rcvd is not None and closed.rcvd.code == 4401
        else:
            raise AssertionError("the gateway accepted a wrong site credential")


def test_the_site_is_not_reachable_through_the_vehicle_endpoints(live: LiveDemo) -> None:
    with client(live) as api:
        answer: httpx.Response = api.get(f"/api/1/vehicles/{solar_site(live)}")
        assert answer.status_code == 404
