"""tesla-fleet-api 1.5.0's energy-site calls (`tesla/energysite.py`) against a live demo."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest
from tesla_fleet_api import TeslaFleetApi
from tesla_fleet_api.const import TeslaEnergyPeriod
from tesla_fleet_api.exceptions import InvalidField, NotFound

from tests.energy.support import battery_site, solar_site
from tests.live import LiveDemo

pytestmark = pytest.mark.contract


@pytest.fixture
async def api(live: LiveDemo) -> AsyncIterator[TeslaFleetApi]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=20)) as session:
        yield TeslaFleetApi(session=session, access_token=live.token, server=live.base_url)


async def test_products_lists_sites_with_their_ids(api: TeslaFleetApi, live: LiveDemo) -> None:
    products = (await api.products())["response"]
    sites = {p["energy_site_id"]: p for p in products if "energy_site_id" in p}
    assert set(live.info["energy_sites"]) <= set(sites)
    assert sites[battery_site(live)]["resource_type"] == "battery"


async def test_reads(api: TeslaFleetApi, live: LiveDemo) -> None:
    site = api.energySites.create(battery_site(live))
    live_status = (await site.live_status())["response"]
    assert isinstance(live_status["percentage_charged"], float)
    assert live_status["grid_status"] == "Active"
    info = (await site.site_info())["response"]
    assert info["components"]["battery"] is True
    assert info["installation_time_zone"] == "Europe/Rome"
    energy = (await site.energy_history(TeslaEnergyPeriod.WEEK))["response"]
    assert len(energy["time_series"]) == 7
    backup = (await site.backup_history(TeslaEnergyPeriod.WEEK))["response"]
    assert backup["total_events"] >= 1
    charges = await api.energySites.create(solar_site(live)).charge_history(
        start_date="2020-01-01T00:00:00Z", end_date="2099-01-01T00:00:00Z"
    )
    assert len(charges["response"]["charge_history"]) >= 3


async def test_writes_answer_updated_and_take_effect(api: TeslaFleetApi, live: LiveDemo) -> None:
    site = api.energySites.create(battery_site(live))
    updated = {"response": {"code": 201, "message": "Updated"}}
    try:
        assert await site.backup(33) == updated
        assert await site.operation("autonomous") == updated
        assert await site.storm_mode(True) == updated
        # It sends both members, the one left alone as null.
        assert await site.grid_import_export(customer_preferred_export_rule="never") == updated
        assert await site.off_grid_vehicle_charging_reserve(40) == updated
        tariff = {
            "seasons": {
                "Year": {"tou_periods": {"ON_PEAK": {"periods": [{"fromHour": 18, "toHour": 22}]}}}
            }
        }
        assert await site.time_of_use_settings(tariff) == updated
        info = (await site.site_info())["response"]
        assert info["backup_reserve_percent"] == 33
        assert info["default_real_mode"] == "autonomous"
        assert info["user_settings"]["storm_mode_enabled"] is True
        assert info["components"]["customer_preferred_export_rule"] == "never"
        assert info["off_grid_vehicle_charging_reserve_percent"] == 40
        assert info["tariff_content_v2"] == tariff
    finally:
        await site.backup(20)
        await site.operation("self_consumption")
        await site.storm_mode(False)
        await site.grid_import_export(customer_preferred_export_rule="pv_only")


async def test_errors_map_to_the_library_exceptions(api: TeslaFleetApi, live: LiveDemo) -> None:
    with pytest.raises(NotFound):
        await api.energySites.create(1).live_status()
    with pytest.raises(InvalidField):
        await api.energySites.create(battery_site(live)).backup(250)
