"""Drive the newest tesla-fleet-api (Python 3.13 venv) against a Flotta server; print JSON.

Usage: fleet_api_latest.py <base_url> <token> <vin> <private_key_path>

The key at <private_key_path> must already be paired on the car. Every step is recorded as
{"ok": true, "value": ...} or {"ok": false, "error": "<ExceptionClass>: ..."} so the calling
test can say exactly which call failed. Runs in its own interpreter: it never imports Flotta.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

import aiohttp
import tesla_fleet_api
from cryptography.hazmat.primitives.asymmetric import ec
from steps import record  # this directory is on sys.path when the script runs
from tesla_fleet_api import TeslaFleetApi


async def main(base_url: str, token: str, vin: str, key_path: str) -> dict[str, Any]:
    summary: dict[str, Any] = {"version": tesla_fleet_api.__version__}
    timeout = aiohttp.ClientTimeout(total=20)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        api = TeslaFleetApi(session=session, access_token=token, server=base_url)
        await api.get_private_key(key_path)
        fleet = api.vehicles.createFleet(vin)
        signed = api.vehicles.createSigned(vin)

        async def products() -> list[str]:
            answer = await api.products()
            return [p["vin"] for p in answer["response"] if "vehicle_id" in p]

        async def vehicle_data() -> dict[str, Any]:
            body = (await fleet.vehicle_data(["charge_state", "location_data"]))["response"]
            return {
                "sections": sorted(k for k in body if k.endswith("_state")),
                "latitude": body["drive_state"].get("latitude"),
                "charge_limit_soc": body["charge_state"]["charge_limit_soc"],
            }

        async def charge_limit() -> int:
            body = (await fleet.vehicle_data(["charge_state"]))["response"]
            return int(body["charge_state"]["charge_limit_soc"])

        async def locked() -> bool:
            body = (await fleet.vehicle_data(["vehicle_state"]))["response"]
            return bool(body["vehicle_state"]["locked"])

        await record(summary, "products", products)
        await record(summary, "vehicle_data", vehicle_data)
        before = await record(summary, "charge_limit_before", charge_limit)
        rest_target = 70 if before != 70 else 72
        summary["rest_target"] = rest_target
        await record(summary, "rest_set_charge_limit", lambda: fleet.set_charge_limit(rest_target))
        await record(summary, "charge_limit_after_rest", charge_limit)

        signed_target = 85 if rest_target != 85 else 86
        summary["signed_target"] = signed_target
        await record(summary, "signed_honk_horn", signed.honk_horn)
        await record(
            summary, "signed_set_charge_limit", lambda: signed.set_charge_limit(signed_target)
        )
        await record(summary, "charge_limit_after_signed", charge_limit)
        await record(summary, "signed_door_unlock", signed.door_unlock)
        await record(summary, "locked_after_unlock", locked)
        await record(summary, "signed_door_lock", signed.door_lock)
        await record(summary, "locked_after_lock", locked)
        await record(summary, "signed_flash_lights", signed.flash_lights)

        stranger = TeslaFleetApi(session=session, access_token=token, server=base_url)
        stranger.private_key = ec.generate_private_key(ec.SECP256R1())
        await record(summary, "unpaired_honk_horn", stranger.vehicles.createSigned(vin).honk_horn)
    return summary


if __name__ == "__main__":
    if len(sys.argv) != 5:
        sys.exit(__doc__)
    result = asyncio.run(asyncio.wait_for(main(*sys.argv[1:5]), timeout=90))
    print(json.dumps(result, default=str))
