"""TeslaPy 2.9.2's energy products: Battery live status, site info, backup reserve and more."""

from __future__ import annotations

from datetime import time as clock_time

import pytest
import teslapy  # type: ignore[import-untyped]

from tests.energy.support import battery_site, solar_site
from tests.live import LiveDemo

pytestmark = pytest.mark.contract


def the_battery(tesla: teslapy.Tesla, live: LiveDemo) -> teslapy.Battery:
    return next(b for b in tesla.battery_list() if b["energy_site_id"] == battery_site(live))


def test_products_split_into_batteries_and_solar(tesla: teslapy.Tesla, live: LiveDemo) -> None:
    assert battery_site(live) in [b["energy_site_id"] for b in tesla.battery_list()]
    assert solar_site(live) in [s["energy_site_id"] for s in tesla.solar_list()]


def test_battery_live_status_and_site_info(tesla: teslapy.Tesla, live: LiveDemo) -> None:
    battery = the_battery(tesla, live).get_site_data()
    assert 0 <= battery["percentage_charged"] <= 100
    assert battery["grid_status"] == "Active"
    assert isinstance(battery["battery_power"], float)
    battery.get_site_info()
    assert battery["site_name"] == "Casa Bologna"
    assert battery["components"]["battery"] is True


def test_backup_reserve_and_operation(tesla: teslapy.Tesla, live: LiveDemo) -> None:
    battery = the_battery(tesla, live)
    try:
        assert battery.set_backup_reserve_percent(64) == "Updated"
        assert battery.get_site_info()["backup_reserve_percent"] == 64
        assert battery.set_operation("backup") == "Updated"
        assert battery.get_site_info()["default_real_mode"] == "backup"
        with pytest.raises(teslapy.HTTPError) as caught:
            battery.set_backup_reserve_percent(120)
        assert caught.value.response.status_code == 400
    finally:
        battery.set_backup_reserve_percent(20)
        battery.set_operation("self_consumption")


def test_import_export_and_tariff(tesla: teslapy.Tesla, live: LiveDemo) -> None:
    battery = the_battery(tesla, live)
    try:
        battery.set_import_export(allow_grid_charging=False, allow_battery_export=True)
        components = battery.get_site_info()["components"]
        assert components["disallow_charge_from_grid_with_solar_installed"] is True
        assert components["customer_preferred_export_rule"] == "battery_ok"
        peak = teslapy.BatteryTariffPeriodCost(0.40, 0.10, "ON_PEAK")
        off = teslapy.BatteryTariffPeriodCost(0.15, 0.05, "OFF_PEAK")
        tariff = teslapy.Battery.create_tariff(
            off, [teslapy.BatteryTariffPeriod(peak, clock_time(17), clock_time(21))], "FP&L", "TOU"
        )
        assert battery.set_tariff(tariff) == "Updated"
        schedule = battery.get_site_info()["tou_settings"]["schedule"]
        assert {
            "target": "peak",
            "week_days": [0, 1, 2, 3, 4, 5, 6],
            "start_seconds": 61200,
            "end_seconds": 75600,
        } in schedule
    finally:
        battery.set_import_export(allow_grid_charging=True, allow_battery_export=False)


def test_calendar_history(tesla: teslapy.Tesla, live: LiveDemo) -> None:
    # TeslaPy's default end_date is "now" in UTC with milliseconds and a Z.
    day = the_battery(tesla, live).get_calendar_history_data(kind="energy", period="day")
    assert len(day["time_series"]) == 1
    assert day["time_series"][0]["total_home_usage"] >= 0
