"""`/status` and `/api/1/users/*` (reference §4.1)."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from starlette.responses import PlainTextResponse, Response

from flotta.auth.tokens import Principal
from flotta.fleet.deps import RuntimeDep, owner_of, require_scopes, visible_vehicles
from flotta.fleet.errors_doc import errors
from flotta.fleet.responses import envelope

router = APIRouter(tags=["users"])

REGION_HOSTS = {
    "na": "fleet-api.prd.na.vn.cloud.tesla.com",
    "eu": "fleet-api.prd.eu.vn.cloud.tesla.com",
    "cn": "fleet-api.prd.cn.vn.cloud.tesla.cn",
}

UserData = require_scopes("user_data")


@router.get("/status", response_class=PlainTextResponse, summary="Health check")
async def status() -> str:
    """Tesla answers the plain string `ok` without authentication."""
    return "ok"


@router.get("/api/1/users/me", responses=errors(401, 403))
async def me(runtime: RuntimeDep, who: Principal = Depends(UserData)) -> Response:
    user = await owner_of(who, runtime)
    return envelope(
        {
            "email": user.email,
            "full_name": user.full_name,
            "profile_image_url": f"{runtime.settings.public_base_url}/static/avatar.svg",
            "vault_uuid": user.uuid,
        }
    )


@router.get("/api/1/users/region", responses=errors(401))
async def region(runtime: RuntimeDep, who: Principal = Depends(require_scopes())) -> Response:
    """Any valid token may ask its region; the base URL is this server, not Tesla's."""
    user = await owner_of(who, runtime)
    return envelope({"region": user.region, "fleet_api_base_url": runtime.settings.public_base_url})


@router.get("/api/1/users/orders", responses=errors(401, 403))
async def orders(runtime: RuntimeDep, who: Principal = Depends(UserData)) -> Response:
    """Orders for the account's vehicles, all delivered (TeslaPy reads this per vehicle)."""
    user = await owner_of(who, runtime)
    vehicles = await visible_vehicles(who, runtime, owned_only=True)
    items = [
        {
            "vehicleMapId": v.vehicle_id,
            "referenceNumber": f"RN{v.vehicle_id}",
            "vin": v.vin,
            "orderStatus": "DELIVERED",
            "orderSubstatus": "_Z",
            "modelCode": str(v.config.get("model_code", "m3")),
            "countryCode": "US" if user.region == "na" else "DE",
            "locale": "en_US",
            "mktOptions": v.option_codes,
            "isB2b": False,
        }
        for v in vehicles
    ]
    return envelope(items, count=len(items))


@router.get("/api/1/users/feature_config", responses=errors(401, 403))
async def feature_config(who: Principal = Depends(UserData)) -> Response:
    return envelope(
        {"signaling": {"enabled": True, "subscribe_connectivity": False, "use_auth_token": False}}
    )


@router.get("/api/1/users/backup_key", responses=errors(401, 403))
async def backup_key(who: Principal = Depends(UserData)) -> Response:
    """No backup key is registered for accounts in Flotta."""
    return envelope({"backup_key": None})
