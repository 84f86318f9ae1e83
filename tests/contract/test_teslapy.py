"""TeslaPy 2.9.2 (synchronous, owner-API style) against a live demo.

TeslaPy addresses vehicles by their numeric `id_s`, fetches `users/orders` for every Vehicle it
builds, and reads `response.result`/`reason` of commands. It is pointed at Flotta by its
module global `BASE_URL` and given a non-expired token through `cache_loader`.
"""

from __future__ import annotations

import pytest
import requests
import teslapy  # type: ignore[import-untyped]

from tests.contract.support import charge_limit, listed_state, other_limit, vehicle_data
from tests.live import LiveDemo

pytestmark = pytest.mark.contract


def vehicle_by_vin(tesla: teslapy.Tesla, vin: str) -> teslapy.Vehicle:
    return next(v for v in tesla.vehicle_list() if v["vin"] == vin)


def test_vehicle_list_builds_vehicles_with_their_orders(
    tesla: teslapy.Tesla, live: LiveDemo
) -> None:
    vehicles = tesla.vehicle_list()
    assert set(live.vins) <= {v["vin"] for v in vehicles}  # other suites may add cars
    for vehicle in (v for v in vehicles if v["vin"] in live.vins):
        assert vehicle["id_s"] == str(vehicle["id"])
        # Each Vehicle fetched users/orders; the order is matched by VIN.
        assert vehicle.order["vin"] == vehicle["vin"]
        assert vehicle.order["orderStatus"] == "DELIVERED"
        assert vehicle.option_code_list(), "option codes should decode to titles"


def test_vehicle_summary_and_data_by_numeric_id(tesla: teslapy.Tesla, vin: str) -> None:
    vehicle = vehicle_by_vin(tesla, vin)
    assert vehicle.get_vehicle_summary()["state"] == "online"
    assert vehicle.available()

    vehicle.get_vehicle_data()
    assert vehicle["vin"] == vin
    assert isinstance(vehicle["charge_state"]["battery_level"], int)
    assert isinstance(vehicle["charge_state"]["charge_limit_soc"], int)
    # TeslaPy's default endpoints include location_data.
    assert isinstance(vehicle["drive_state"]["latitude"], float)
    assert isinstance(vehicle["drive_state"]["longitude"], float)
    assert {"climate_state", "vehicle_state", "gui_settings", "vehicle_config"} <= set(vehicle)
    assert vehicle.decode_vin()["year"].isdigit()


def test_commands_by_numeric_id(tesla: teslapy.Tesla, live: LiveDemo, vin: str) -> None:
    vehicle = vehicle_by_vin(tesla, vin)
    assert vehicle.command("HONK_HORN") is True

    target = other_limit(charge_limit(live, vin), 75, 65)
    assert vehicle.command("CHANGE_CHARGE_LIMIT", percent=target) is True
    assert charge_limit(live, vin) == target
    assert vehicle.get_vehicle_data("charge_state")["charge_state"]["charge_limit_soc"] == target

    assert vehicle.command("UNLOCK") is True
    assert vehicle_data(live, vin, "vehicle_state")["vehicle_state"]["locked"] is False
    assert vehicle.command("LOCK") is True
    assert vehicle_data(live, vin, "vehicle_state")["vehicle_state"]["locked"] is True


def test_refused_command_raises_vehicle_error_with_the_reason(
    tesla: teslapy.Tesla, live: LiveDemo, vin: str
) -> None:
    vehicle = vehicle_by_vin(tesla, vin)
    current = charge_limit(live, vin)
    vehicle.command("CHANGE_CHARGE_LIMIT", percent=other_limit(current, 75, 65))
    again = charge_limit(live, vin)
    with pytest.raises(teslapy.VehicleError, match="already_set"):
        vehicle.command("CHANGE_CHARGE_LIMIT", percent=again)


def test_sync_wake_up_wakes_a_sleeping_car(
    tesla: teslapy.Tesla, live: LiveDemo, sleeping_vin: str
) -> None:
    vehicle = vehicle_by_vin(tesla, sleeping_vin)
    assert vehicle["state"] == "asleep"
    assert not vehicle.available()

    with pytest.raises(requests.HTTPError) as caught:
        vehicle.get_vehicle_data()
    assert caught.value.response is not None
    assert caught.value.response.status_code == 408

    vehicle.sync_wake_up(timeout=20, interval=1)
    assert vehicle["state"] == "online"
    assert listed_state(live, sleeping_vin) == "online"
    assert vehicle.get_vehicle_data()["charge_state"]["battery_level"] >= 0
