"""`flotta demo`'s OAuth seed: a confidential, partner-registered demo app with the owner's
consent for every demo vehicle, the first-party public `ownerapi` client, a refresh token."""

from __future__ import annotations

import secrets
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from flotta.accounts.repository import UserRepository
from flotta.auth.scopes import OWNER_SCOPES
from flotta.devices.repository import VehicleRepository
from flotta.oauth.consent import Choice, ConsentService, vehicle_ref
from flotta.oauth.endpoints import TOKEN_PATH
from flotta.oauth.grants import oauth_service
from flotta.oauth.models import OAuthClient
from flotta.oauth.repository import OAuthRepository
from flotta.oauth.service import SECRET_PREFIX, hmac_hash
from flotta.runtime import Runtime

DEMO_APP_NAME = "Flotta Demo App"
# TeslaPy and teslajsonpy's login send this fixed client_id (the owner app's).
OWNER_API_CLIENT_ID = "ownerapi"


def demo_client_id(secret_key: str) -> str:
    """Stable across restarts of one deployment, random-looking (32 hex) across deployments."""
    return hmac_hash(secret_key, "flotta-demo-app")[:32]


async def seed_demo_oauth(
    session: AsyncSession, runtime: Runtime, subject: str, developer_id: int | None = None
) -> dict[str, Any]:
    """Ensure both clients, give the demo app a fresh secret and the owner a refresh token.

    The demo app belongs to `developer_id` (the demo developer) when given.
    """
    service = oauth_service(session, runtime)
    repo = OAuthRepository(session)
    owner = await UserRepository(session).by_uuid(subject)
    if owner is None:
        raise RuntimeError("the demo owner must be provisioned first")
    client_id = demo_client_id(runtime.settings.secret_key)
    app = await repo.client(client_id)
    if app is None:
        app, secret = await service.register_client(
            name=DEMO_APP_NAME,
            owner_id=developer_id or owner.id,
            confidential=True,
            scopes=OWNER_SCOPES,
            redirect_uris=["http://localhost:8085/callback"],
            client_id=client_id,
        )
    else:
        secret = await _new_secret(app, runtime.settings.secret_key)
        app.owner_id = developer_id or app.owner_id
    # Registered and consented, so demo.json's tokens work at once; each start renews both.
    app.partner_registered_at = app.partner_registered_at or runtime.clock.now()
    await _consent_to_every_vehicle(session, runtime, owner.id, app)
    owner_api = await repo.client(OWNER_API_CLIENT_ID)
    if owner_api is None:
        owner_api, _ = await service.register_client(
            name="Owner API (TeslaPy, teslajsonpy)",
            owner_id=None,
            confidential=False,
            scopes=OWNER_SCOPES,
            redirect_uris=["tesla://auth/callback"],
            client_id=OWNER_API_CLIENT_ID,
        )
    owner_api.first_party = True  # the owner's own app: it needs no consent record
    refresh_token = await service.issue(app, owner.id, OWNER_SCOPES)
    return {
        "refresh_token": refresh_token,
        "client_id": app.client_id,
        "client_secret": secret,
        "token_url": f"{runtime.settings.public_base_url}{TOKEN_PATH}",
    }


async def _consent_to_every_vehicle(
    session: AsyncSession, runtime: Runtime, owner_id: int, app: OAuthClient
) -> None:
    vehicles = await VehicleRepository(session).owned_by(owner_id)
    refs = frozenset(vehicle_ref(v.id) for v in vehicles)
    scopes = frozenset(OWNER_SCOPES)
    await ConsentService(session, runtime.clock).record(
        owner_id, app.id, Choice(scopes, scopes, refs, refs)
    )


async def _new_secret(app: OAuthClient, secret_key: str) -> str:
    """Secrets are stored hashed, so a restarted demo can only hand out a new one."""
    secret = f"{SECRET_PREFIX}{secrets.token_urlsafe(32)}"
    app.secret_hash = hmac_hash(secret_key, secret)
    return secret
