"""Drive tesla-fleet-api >= 1.18's OAuth against a Flotta server (Python 3.13 venv); print JSON.

Usage: fleet_api_oauth.py <base_url> <client_id> <client_secret> <refresh_token>

`TeslaFleetOAuth` starts with `expires=0`, so its first call refreshes at `const.TOKEN_URLS`,
which is pointed at Flotta (the documented 1.18 override). Runs in its own interpreter.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

import aiohttp
import tesla_fleet_api
from tesla_fleet_api import TeslaFleetApi, TeslaFleetOAuth
from tesla_fleet_api.const import TOKEN_URLS


async def main(base_url: str, client_id: str, secret: str, refresh_token: str) -> dict[str, Any]:
    TOKEN_URLS["na"] = f"{base_url}/oauth2/v3/token"
    summary: dict[str, Any] = {"version": tesla_fleet_api.__version__}
    timeout = aiohttp.ClientTimeout(total=20)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        oauth = TeslaFleetOAuth(
            session, region="na", client_id=client_id, refresh_token=refresh_token, expires=0
        )
        oauth.server = base_url
        products = await oauth.products()  # refreshes first: expires=0
        summary["vins"] = [p["vin"] for p in products["response"] if "vehicle_id" in p]
        summary["refresh_token"] = oauth.refresh_token
        refreshed = await oauth.refresh_access_token()  # the rotated token, used once more
        summary["second_refresh_token"] = refreshed["refresh_token"]
        partner = TeslaFleetApi(session=session, access_token="", server=base_url)
        token = await partner.partner_login(client_id, secret)
        summary["partner_token_keys"] = sorted(token)
        summary["partner_access_token"] = token["access_token"]
    return summary


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(*sys.argv[1:5]))))
