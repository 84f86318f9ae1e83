"""tesla-fleet-api 1.5.0 (Home Assistant's Tesla Fleet library), in process, against a live demo.

The client is pointed at Flotta only through `server=` and given the demo's token directly.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from tesla_fleet_api import TeslaFleetApi
from tesla_fleet_api.const import Method
from tesla_fleet_api.exceptions import (
    Forbidden,
    InvalidCommand,
    NotFound,
    NotOnWhitelistFault,
    VehicleOffline,
)

from tests.contract.support import (
    charge_limit,
    listed_state,
    new_private_key,
    other_limit,
    pair_key,
    public_point,
    vehicle_data,
)
from tests.live import LiveDemo

pytestmark = pytest.mark.contract

SECTIONS = frozenset(
    {
        "charge_state",
        "climate_state",
        "closures_state",
        "drive_state",
        "gui_settings",
        "vehicle_config",
        "vehicle_state",
        "charge_schedule_data",
        "preconditioning_schedule_data",
        "location_data",
    }
)
UNKNOWN_VIN = "5YJ3E1EA0KF000000"
WAKE_POLL_S = 10.0


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=20)) as s:
        yield s


@pytest.fixture
def api(live: LiveDemo, session: aiohttp.ClientSession) -> TeslaFleetApi:
    return TeslaFleetApi(session=session, access_token=live.token, server=live.base_url)


def sections_of(body: dict[str, Any]) -> set[str]:
    return set(body) & SECTIONS


async def test_status_is_ok(api: TeslaFleetApi) -> None:
    assert (await api.status()).strip() == "ok"


async def test_products_lists_every_demo_vehicle(api: TeslaFleetApi, live: LiveDemo) -> None:
    answer = await api.products()
    vehicles = [p for p in answer["response"] if "vehicle_id" in p]
    assert set(live.vins) <= {v["vin"] for v in vehicles}  # other suites may add cars
    assert answer["count"] == len(answer["response"])
    for item in vehicles:
        assert isinstance(item["id"], int)
        assert isinstance(item["vehicle_id"], int)
        assert item["id_s"] == str(item["id"])
        assert item["state"] in {"online", "asleep", "offline"}
        assert isinstance(item["display_name"], str) and item["display_name"]


async def test_vehicle_list_and_single_vehicle(api: TeslaFleetApi, vin: str) -> None:
    vehicle = api.vehicles.createFleet(vin)
    listing = await vehicle.list()
    mine = next(v for v in listing["response"] if v["vin"] == vin)
    assert listing["count"] == len(listing["response"]) >= 4
    assert listing["pagination"]["current"] == 1

    single = (await vehicle.vehicle())["response"]
    assert single["vin"] == vin
    assert single["id"] == mine["id"]
    assert single["state"] == "online"


@pytest.mark.parametrize(
    ("endpoints", "expected"),
    [
        (["charge_state"], {"charge_state"}),
        (["charge_state", "location_data"], {"charge_state", "drive_state"}),
        (["drive_state"], {"drive_state"}),
        (["location_data"], {"drive_state"}),
        (
            ["closures_state", "charge_schedule_data", "preconditioning_schedule_data"],
            {"closures_state", "charge_schedule_data", "preconditioning_schedule_data"},
        ),
        (
            ["vehicle_state", "climate_state", "gui_settings", "vehicle_config"],
            {"vehicle_state", "climate_state", "gui_settings", "vehicle_config"},
        ),
    ],
)
async def test_vehicle_data_returns_exactly_the_requested_sections(
    api: TeslaFleetApi, vin: str, endpoints: list[str], expected: set[str]
) -> None:
    body = (await api.vehicles.createFleet(vin).vehicle_data(endpoints))["response"]
    assert body["vin"] == vin
    assert body["state"] == "online"
    assert sections_of(body) == expected
    if "location_data" in endpoints:
        drive = body["drive_state"]
        assert isinstance(drive["latitude"], float)
        assert isinstance(drive["longitude"], float)
        assert -90 <= drive["latitude"] <= 90 and -180 <= drive["longitude"] <= 180
    elif "drive_state" in body:
        assert "latitude" not in body["drive_state"]
        assert "longitude" not in body["drive_state"]
    if "charge_state" in expected:
        charge = body["charge_state"]
        assert isinstance(charge["battery_level"], int)
        assert isinstance(charge["charge_limit_soc"], int)


async def test_vehicle_data_without_endpoints_has_no_location(api: TeslaFleetApi, vin: str) -> None:
    body = (await api.vehicles.createFleet(vin).vehicle_data())["response"]
    assert {"charge_state", "climate_state", "drive_state", "vehicle_state"} <= sections_of(body)
    assert "latitude" not in body["drive_state"]


async def test_location_data_needs_the_vehicle_location_scope(
    live: LiveDemo, session: aiohttp.ClientSession, vin: str
) -> None:
    token = live.mint(["openid", "vehicle_device_data"])
    api = TeslaFleetApi(session=session, access_token=token, server=live.base_url)
    body = (await api.vehicles.createFleet(vin).vehicle_data(["location_data"]))["response"]
    assert "latitude" not in body.get("drive_state", {})
    assert "longitude" not in body.get("drive_state", {})


async def test_wake_up_brings_a_sleeping_car_online(api: TeslaFleetApi, sleeping_vin: str) -> None:
    vehicle = api.vehicles.createFleet(sleeping_vin)
    listing = (await vehicle.list())["response"]
    assert next(v for v in listing if v["vin"] == sleeping_vin)["state"] == "asleep"

    woken = (await vehicle.wake_up())["response"]
    assert woken["vin"] == sleeping_vin
    assert woken["state"] in {"online", "asleep"}  # Tesla may still say asleep; poll after
    deadline = time.monotonic() + WAKE_POLL_S
    state = woken["state"]
    while state != "online" and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
        state = (await vehicle.vehicle())["response"]["state"]
    assert state == "online"
    data = (await vehicle.vehicle_data(["charge_state"]))["response"]
    assert data["state"] == "online"


async def test_rest_charge_limit_shows_in_the_next_vehicle_data(
    api: TeslaFleetApi, live: LiveDemo, vin: str
) -> None:
    vehicle = api.vehicles.createFleet(vin)
    target = other_limit(charge_limit(live, vin), 80, 70)
    answer = await vehicle.set_charge_limit(target)
    assert answer == {"response": {"result": True, "reason": ""}}
    charge = (await vehicle.vehicle_data(["charge_state"]))["response"]["charge_state"]
    assert charge["charge_limit_soc"] == target


async def test_rest_lock_and_unlock_show_in_vehicle_state(api: TeslaFleetApi, vin: str) -> None:
    vehicle = api.vehicles.createFleet(vin)
    assert (await vehicle.door_unlock())["response"]["result"] is True
    state = (await vehicle.vehicle_data(["vehicle_state"]))["response"]["vehicle_state"]
    assert state["locked"] is False
    assert (await vehicle.door_lock())["response"]["result"] is True
    state = (await vehicle.vehicle_data(["vehicle_state"]))["response"]["vehicle_state"]
    assert state["locked"] is True


async def test_rest_honk_horn_succeeds(api: TeslaFleetApi, vin: str) -> None:
    assert await api.vehicles.createFleet(vin).honk_horn() == {
        "response": {"result": True, "reason": ""}
    }


async def test_signed_commands_with_a_paired_key(
    api: TeslaFleetApi, live: LiveDemo, vin: str
) -> None:
    api.private_key = new_private_key()
    pair_key(live, vin, public_point(api.private_key))
    signed = api.vehicles.createSigned(vin)

    assert (await signed.honk_horn())["response"]["result"] is True

    target = other_limit(charge_limit(live, vin), 75, 65)
    assert (await signed.set_charge_limit(target))["response"]["result"] is True
    assert charge_limit(live, vin) == target

    # VCSEC (door lock) and Infotainment keep separate sessions; both must work.
    assert (await signed.door_unlock())["response"]["result"] is True
    assert vehicle_data(live, vin, "vehicle_state")["vehicle_state"]["locked"] is False
    assert (await signed.door_lock())["response"]["result"] is True
    assert vehicle_data(live, vin, "vehicle_state")["vehicle_state"]["locked"] is True

    # A second command on an established session (counter + 1).
    assert (await signed.flash_lights())["response"]["result"] is True


async def test_signed_command_with_an_unpaired_key_is_refused(api: TeslaFleetApi, vin: str) -> None:
    api.private_key = new_private_key()
    with pytest.raises(NotOnWhitelistFault):
        await api.vehicles.createSigned(vin).honk_horn()


async def test_signed_commands_are_scoped_by_what_they_do(
    live: LiveDemo, session: aiohttp.ClientSession, vin: str
) -> None:
    """A charging-only token may sign charging commands, but not a honk (Tesla's scopes)."""
    token = live.mint(["openid", "vehicle_device_data", "vehicle_charging_cmds"])
    api = TeslaFleetApi(session=session, access_token=token, server=live.base_url)
    api.private_key = new_private_key()
    pair_key(live, vin, public_point(api.private_key))
    signed = api.vehicles.createSigned(vin)

    target = other_limit(charge_limit(live, vin), 70, 60)
    assert (await signed.set_charge_limit(target))["response"]["result"] is True
    assert charge_limit(live, vin) == target
    with pytest.raises(Forbidden):
        await signed.honk_horn()


async def test_signed_command_to_a_sleeping_car_raises_vehicle_offline(
    api: TeslaFleetApi, live: LiveDemo, sleeping_vin: str
) -> None:
    api.private_key = new_private_key()
    pair_key(live, sleeping_vin, public_point(api.private_key))
    with pytest.raises(VehicleOffline):
        await api.vehicles.createSigned(sleeping_vin).honk_horn()


async def test_command_to_a_sleeping_car_raises_vehicle_offline(
    api: TeslaFleetApi, live: LiveDemo, sleeping_vin: str
) -> None:
    with pytest.raises(VehicleOffline) as caught:
        await api.vehicles.createFleet(sleeping_vin).honk_horn()
    assert caught.value.status == 408
    with pytest.raises(VehicleOffline):
        await api.vehicles.createFleet(sleeping_vin).vehicle_data(["charge_state"])
    assert listed_state(live, sleeping_vin) == "asleep"  # a failed command does not wake it


async def test_unknown_vin_raises_not_found(api: TeslaFleetApi) -> None:
    vehicle = api.vehicles.createFleet(UNKNOWN_VIN)
    with pytest.raises(NotFound) as caught:
        await vehicle.vehicle()
    assert caught.value.status == 404
    with pytest.raises(NotFound):
        await vehicle.honk_horn()


async def test_token_without_vehicle_cmds_raises_missing_scopes(
    live: LiveDemo, session: aiohttp.ClientSession, vin: str
) -> None:
    token = live.mint(["openid", "vehicle_device_data"])
    api = TeslaFleetApi(session=session, access_token=token, server=live.base_url)
    vehicle = api.vehicles.createFleet(vin)
    assert (await vehicle.vehicle())["response"]["vin"] == vin  # reading is allowed
    with pytest.raises(Forbidden) as caught:
        await vehicle.honk_horn()
    assert caught.value.status == 403
    assert caught.value.key == "Unauthorized missing scopes"


async def test_unknown_command_raises_invalid_command(api: TeslaFleetApi, vin: str) -> None:
    # 1.5.0 has no method for an unknown command; its raw request is what a caller would use.
    with pytest.raises(InvalidCommand) as caught:
        await api._request(Method.POST, f"api/1/vehicles/{vin}/command/self_destruct")
    assert caught.value.status == 400


async def test_async_token_callable_is_used_for_every_call(
    live: LiveDemo, session: aiohttp.ClientSession
) -> None:
    calls = 0

    async def token() -> str:
        nonlocal calls
        calls += 1
        return live.token

    api = TeslaFleetApi(session=session, access_token=token, server=live.base_url)
    await api.products()
    await api.vehicles.createFleet(live.vins[0]).vehicle()
    assert calls == 2
