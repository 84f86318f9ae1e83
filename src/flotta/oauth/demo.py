"""`flotta demo`'s OAuth seed: a confidential demo app, the public `ownerapi` client, a grant."""

from __future__ import annotations

import secrets
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from flotta.accounts.repository import UserRepository
from flotta.auth.tokens import OWNER_SCOPES
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


async def seed_demo_oauth(session: AsyncSession, runtime: Runtime, subject: str) -> dict[str, Any]:
    """Ensure both clients, give the demo app a fresh secret and the owner a refresh token."""
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
            owner_id=owner.id,
            confidential=True,
            scopes=OWNER_SCOPES,
            redirect_uris=["http://localhost:8085/callback"],
            client_id=client_id,
        )
    else:
        secret = await _new_secret(app, runtime.settings.secret_key)
    if await repo.client(OWNER_API_CLIENT_ID) is None:
        await service.register_client(
            name="Owner API (TeslaPy, teslajsonpy)",
            owner_id=None,
            confidential=False,
            scopes=OWNER_SCOPES,
            redirect_uris=["tesla://auth/callback"],
            client_id=OWNER_API_CLIENT_ID,
        )
    refresh_token = await service.issue(app, owner.id, OWNER_SCOPES)
    return {
        "refresh_token": refresh_token,
        "client_id": app.client_id,
        "client_secret": secret,
        "token_url": f"{runtime.settings.public_base_url}{TOKEN_PATH}",
    }


async def _new_secret(app: OAuthClient, secret_key: str) -> str:
    """Secrets are stored hashed, so a restarted demo can only hand out a new one."""
    secret = f"{SECRET_PREFIX}{secrets.token_urlsafe(32)}"
    app.secret_hash = hmac_hash(secret_key, secret)
    return secret
