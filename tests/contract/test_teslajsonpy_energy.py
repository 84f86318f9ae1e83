"""teslajsonpy 3.14.0's energy-site objects: site_info, live_status and site_status."""

from __future__ import annotations

import pytest
from teslajsonpy import Controller  # type: ignore[import-untyped]
from teslajsonpy.energy import SolarPowerwallSite, SolarSite  # type: ignore[import-untyped]

from tests.energy.support import battery_site, solar_site
from tests.live import LiveDemo

pytestmark = [
    pytest.mark.contract,
    pytest.mark.filterwarnings("ignore:Setting per-request cookies:DeprecationWarning"),
]


async def test_energy_site_objects(controller: Controller, live: LiveDemo) -> None:
    await controller.connect()
    sites = await controller.generate_energysite_objects()
    battery = sites[battery_site(live)]
    solar = sites[solar_site(live)]
    assert isinstance(battery, SolarPowerwallSite)
    assert type(solar) is SolarSite
    assert battery.data_available and solar.data_available
    assert battery.site_name == "Casa Bologna"
    assert 0 <= battery.percentage_charged <= 100
    assert battery.grid_status == "Active"
    assert battery.operation_mode in ("self_consumption", "autonomous", "backup")
    assert battery.storm_mode_capable is True
    assert 0 < battery.energy_left <= 27_000  # Wh, from nameplate and charge
    assert battery.export_rule in ("pv_only", "battery_ok", "never")
    assert solar.site_name == "Fremont Solar Garage"
    assert isinstance(solar.load_power, float) and solar.load_power > 0


async def test_energy_site_commands(controller: Controller, live: LiveDemo) -> None:
    await controller.connect()
    battery = (await controller.generate_energysite_objects())[battery_site(live)]
    try:
        await battery.set_reserve_percent(71)
        await battery.set_operation_mode("autonomous")
        await battery.set_grid_charging(False)
        await battery.set_export_rule("battery_ok")
        assert await battery.set_storm_mode(True)
        fresh = await controller.get_site_config(battery_site(live))
        assert fresh["backup_reserve_percent"] == 71
        assert fresh["default_real_mode"] == "autonomous"
        assert fresh["components"]["disallow_charge_from_grid_with_solar_installed"] is True
        assert fresh["components"]["customer_preferred_export_rule"] == "battery_ok"
        assert fresh["user_settings"]["storm_mode_enabled"] is True
    finally:
        await battery.set_reserve_percent(20)
        await battery.set_operation_mode("self_consumption")
        await battery.set_grid_charging(True)
        await battery.set_export_rule("pv_only")
        await battery.set_storm_mode(False)
