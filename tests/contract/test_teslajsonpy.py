"""teslajsonpy 3.14.0 (Home Assistant "Tesla Custom" library) against a live demo.

Pointed at Flotta by `api_proxy_url` and `auth_domain`, with an access token whose
`expiration` is in the future so the library never tries to refresh it.
"""

from __future__ import annotations

import time

import httpx
import pytest
from teslajsonpy import Controller  # type: ignore[import-untyped]
from teslajsonpy.exceptions import TeslaException  # type: ignore[import-untyped]

from tests.contract.support import (
    charge_limit,
    http,
    listed_state,
    other_limit,
    vehicle_data,
)
from tests.live import LiveDemo

pytestmark = [
    pytest.mark.contract,
    # teslajsonpy passes `cookies={}` on every request; httpx 0.28 deprecates that and the
    # warning is attributed to httpx itself, so pyproject's teslajsonpy filter misses it.
    pytest.mark.filterwarnings("ignore:Setting per-request cookies:DeprecationWarning"),
]


async def test_connect_builds_cars_from_products_and_vehicle_data(
    controller: Controller, live: LiveDemo, vin: str
) -> None:
    tokens = await controller.connect()
    assert tokens["access_token"] == live.token
    cars = await controller.generate_car_objects()
    assert set(live.vins) <= set(cars)  # other suites may add cars to the account

    car = cars[vin]
    assert car.vin == vin
    assert car.state == "online"
    assert car.is_on
    assert isinstance(car.display_name, str) and car.display_name
    # generate_car_objects swallows vehicle_data errors, so prove the data really arrived.
    assert car.data_available
    assert isinstance(car.battery_level, int)
    assert isinstance(car.charge_limit_soc, int)
    assert isinstance(car.latitude, float) and isinstance(car.longitude, float)
    assert isinstance(car.is_locked, bool)
    assert car.car_version


async def test_update_refreshes_car_data(controller: Controller, live: LiveDemo, vin: str) -> None:
    await controller.connect()
    # update() indexes every listed car, so build them all (filtered_vins would break it).
    car = (await controller.generate_car_objects())[vin]
    target = other_limit(car.charge_limit_soc, 75, 65)
    with http(live) as someone_else:
        answer = someone_else.post(
            f"/api/1/vehicles/{vin}/command/set_charge_limit", json={"percent": target}
        )
    assert answer.json()["response"]["result"] is True
    # update() also refreshes every listed energy site, which must be built first (as Home
    # Assistant does at setup).
    await controller.generate_energysite_objects()
    # Home Assistant's poll: a forced update reads vehicle_data again.
    # (update() returns False even on success: it ORs the None its tasks return.)
    await controller.update(vins={vin}, force=True)
    assert car.charge_limit_soc == target


async def test_energy_sites_alone(controller: Controller, live: LiveDemo) -> None:
    await controller.connect(include_vehicles=False)
    sites = await controller.generate_energysite_objects()
    assert set(sites) == set(live.info["energy_sites"])  # tests/contract/*_energy.py go deeper


async def test_commands_succeed_and_change_state(
    controller: Controller, live: LiveDemo, vin: str
) -> None:
    await controller.connect()
    car = (await controller.generate_car_objects(filtered_vins=[vin]))[vin]

    await car.honk_horn()  # sent with body {"on": true}; raises unless result is true

    target = other_limit(charge_limit(live, vin), 75, 65)
    await car.change_charge_limit(target)
    assert car.charge_limit_soc == target  # only updated locally when result was true
    assert charge_limit(live, vin) == target

    await car.lock()
    assert car.is_locked is True
    assert vehicle_data(live, vin, "vehicle_state")["vehicle_state"]["locked"] is True


async def test_wake_up_brings_a_sleeping_car_online(
    controller: Controller, live: LiveDemo, sleeping_vin: str
) -> None:
    await controller.connect()
    car = (await controller.generate_car_objects(filtered_vins=[sleeping_vin]))[sleeping_vin]
    assert car.state == "asleep"
    assert not car.is_on
    assert not car.data_available  # a sleeping car has no vehicle_data (408 was tolerated)

    await car.wake_up()
    assert car.is_on
    assert controller.is_car_online(vin=sleeping_vin)
    assert listed_state(live, sleeping_vin) == "online"


async def test_unknown_vehicle_is_a_not_found_tesla_exception(controller: Controller) -> None:
    # 404 is one of the codes teslajsonpy does not retry, so this answers at once.
    await controller.connect()
    with pytest.raises(TeslaException) as caught:
        await controller.api("VEHICLE_SUMMARY", path_vars={"vehicle_id": "5YJ3E1EA0KF000000"})
    assert caught.value.code == 404
    assert caught.value.message == "NOT_FOUND"


async def test_invalid_token_is_unauthorized(live: LiveDemo) -> None:
    websession = httpx.AsyncClient(timeout=15)
    restricted = Controller(
        websession=websession,
        access_token="not-a-flotta-token",
        expiration=int(time.time()) + 3600,
        api_proxy_url=live.base_url,
        auth_domain=live.base_url,
    )
    try:
        with pytest.raises(TeslaException) as caught:
            await restricted.connect()
        assert caught.value.code == 401
    finally:
        await restricted.disconnect()
        await websession.aclose()
