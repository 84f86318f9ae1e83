"""Drive the newest tesla-fleet-api's energy-site calls against a Flotta server; print JSON.

Usage: fleet_api_energy_latest.py <base_url> <token> <battery_site_id> <solar_site_id>

Every step is recorded as {"ok": true, "value": ...} or {"ok": false, "error": "..."}; the
settings it changes are put back at the end. Runs in its own interpreter: never imports Flotta.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

import aiohttp
import tesla_fleet_api
from steps import record  # this directory is on sys.path when the script runs
from tesla_fleet_api import TeslaFleetApi


async def main(base_url: str, token: str, battery_id: str, solar_id: str) -> dict[str, Any]:
    summary: dict[str, Any] = {"version": tesla_fleet_api.__version__}
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=20)) as session:
        api = TeslaFleetApi(session=session, access_token=token, server=base_url)
        site = api.energySites.create(int(battery_id))
        solar = api.energySites.create(int(solar_id))

        async def products() -> list[int]:
            answer = await api.products()
            return [p["energy_site_id"] for p in answer["response"] if "energy_site_id" in p]

        async def info() -> dict[str, Any]:
            body = (await site.site_info())["response"]
            return {
                "backup_reserve_percent": body["backup_reserve_percent"],
                "default_real_mode": body["default_real_mode"],
                "storm_mode_enabled": body["user_settings"]["storm_mode_enabled"],
                "export_rule": body["components"]["customer_preferred_export_rule"],
            }

        await record(summary, "products", products)
        await record(summary, "live_status", lambda: site.live_status())
        await record(summary, "solar_live_status", lambda: solar.live_status())
        await record(summary, "energy_history", lambda: site.energy_history("week"))
        await record(summary, "backup_history", lambda: site.backup_history("week"))
        await record(summary, "backup", lambda: site.backup(37))
        await record(summary, "operation", lambda: site.operation("autonomous"))
        await record(summary, "storm_mode", lambda: site.storm_mode(True))
        await record(
            summary,
            "grid_import_export",
            lambda: site.grid_import_export(customer_preferred_export_rule="battery_ok"),
        )
        await record(summary, "site_info_after", info)
        await record(summary, "bad_backup", lambda: site.backup(101))
        await site.backup(20)
        await site.operation("self_consumption")
        await site.storm_mode(False)
        await site.grid_import_export(customer_preferred_export_rule="pv_only")
    return summary


if __name__ == "__main__":
    if len(sys.argv) != 5:
        sys.exit(__doc__)
    result = asyncio.run(asyncio.wait_for(main(*sys.argv[1:5]), timeout=60))
    print(json.dumps(result, default=str))
