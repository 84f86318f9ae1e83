"""tesla-fleet-api 1.5.0 meets Flotta's rate limits: its RateLimited exception, with the wait."""

from __future__ import annotations

from collections.abc import Callable

import aiohttp
import pytest
from tesla_fleet_api import TeslaFleetApi
from tesla_fleet_api.exceptions import RateLimited

from tests.live import LiveDemo

pytestmark = pytest.mark.contract


async def test_a_spent_budget_raises_rate_limited(demo_factory: Callable[..., LiveDemo]) -> None:
    demo = demo_factory(vehicles=1, ratelimit={"data": "2/minute", "commands": "1/minute"})
    timeout = aiohttp.ClientTimeout(total=20)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        api = TeslaFleetApi(session=session, access_token=demo.token, server=demo.base_url)
        vehicle = api.vehicles.createFleet(demo.vins[0])
        for _ in range(2):
            assert (await vehicle.vehicle_data())["response"]["vin"] == demo.vins[0]
        with pytest.raises(RateLimited) as limited:
            await vehicle.vehicle_data()
        assert isinstance(limited.value.data, dict)
        assert 1 <= int(limited.value.data["after"]) <= 60
        assert int(limited.value.data["reset"]) == int(limited.value.data["after"])

        assert (await vehicle.flash_lights())["response"]["result"] is True
        with pytest.raises(RateLimited):
            await vehicle.flash_lights()
