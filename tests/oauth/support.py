"""Helpers of the OAuth tests: new refresh-token families on the live demo, form posts."""

from __future__ import annotations

import base64
import json
from datetime import timedelta
from typing import Any

import httpx

from flotta.accounts.repository import UserRepository
from flotta.auth.scopes import OWNER_SCOPES
from flotta.oauth.codes import CodeRequest
from flotta.oauth.demo import OWNER_API_CLIENT_ID
from flotta.oauth.grants import code_service, oauth_service
from flotta.oauth.repository import OAuthRepository
from flotta.oauth.service import hmac_hash
from tests.live import LiveDemo

TOKEN_PATH = "/oauth2/v3/token"
CODE_REDIRECT = "http://localhost:8085/callback"  # the demo app's (flotta.oauth.demo)


def issue_family(
    live: LiveDemo, client_id: str | None = None, scopes: list[str] | None = None
) -> str:
    """A fresh refresh token of a new family for the demo owner (as an authorize would give)."""
    runtime = live.handle.runtime
    wanted = client_id or str(live.info["client_id"])

    async def issue() -> str:
        async with runtime.sessions() as session, session.begin():
            client = await OAuthRepository(session).client(wanted)
            assert client is not None, wanted
            user_id = await _owner_id(live, session)
            return await oauth_service(session, runtime).issue(
                client, user_id, scopes or OWNER_SCOPES
            )

    return live.call(issue())


async def _owner_id(live: LiveDemo, session: Any) -> int:
    user = await UserRepository(session).by_uuid(live._owner_subject())
    assert user is not None
    return user.id


def issue_code(live: LiveDemo) -> str:
    """An authorization code for the demo owner and app, as a consent would give one."""
    runtime = live.handle.runtime

    async def issue() -> str:
        async with runtime.sessions() as session, session.begin():
            client = await OAuthRepository(session).client(str(live.info["client_id"]))
            assert client is not None
            codes = code_service(session, runtime)
            request = CodeRequest(
                client, await _owner_id(live, session), CODE_REDIRECT, list(OWNER_SCOPES), None,
                None,
            )  # fmt: skip
            return await codes.issue(request)

    return live.call(issue())


def issue_ownerapi_family(live: LiveDemo) -> str:
    return issue_family(live, OWNER_API_CLIENT_ID)


def post_token(live: LiveDemo, **form: str) -> httpx.Response:
    """POST the form to the token endpoint (a plain client, not the one under test)."""
    return httpx.post(f"{live.base_url}{TOKEN_PATH}", data=form, timeout=10)


def claims(jwt: str) -> dict[str, Any]:
    """A JWT's claims, unverified (as clients read `scp`)."""
    part = jwt.split(".")[1]
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    return decoded


def backdate(live: LiveDemo, token: str, *, used_s: float = 0, expire: bool = False) -> None:
    """Move a token's `used_at` back by `used_s` seconds and/or make it expired (on the DB)."""
    runtime = live.handle.runtime

    async def change() -> None:
        async with runtime.sessions() as session, session.begin():
            row = await OAuthRepository(session).token_by_hash(
                hmac_hash(runtime.settings.secret_key, token)
            )
            assert row is not None
            if used_s and row.used_at is not None:
                row.used_at -= timedelta(seconds=used_s)
            if expire:
                row.expires_at = runtime.clock.now() - timedelta(seconds=1)

    live.call(change())
