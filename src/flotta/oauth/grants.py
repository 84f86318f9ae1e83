"""RFC 6749 grants at `POST /oauth2/v3/token`: refresh_token (§6) and client_credentials (§4.4)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy.ext.asyncio import AsyncSession

from flotta.accounts.repository import UserRepository
from flotta.oauth.errors import InvalidRequest, LoginRequired, UnauthorizedClient
from flotta.oauth.models import OAuthClient, as_list
from flotta.oauth.scopes import parse_scope, partner_scopes
from flotta.oauth.service import Lifetimes, OAuthService, Refusal, Rotation
from flotta.runtime import Runtime

GRANT_TYPES = ("refresh_token", "client_credentials")


def oauth_service(session: AsyncSession, runtime: Runtime) -> OAuthService:
    """The service configured from the runtime's settings and clock."""
    auth = runtime.settings.auth
    return OAuthService(
        session,
        secret_key=runtime.settings.secret_key,
        clock=runtime.clock,
        region=auth.region,
        lifetimes=Lifetimes(refresh_s=auth.refresh_token_ttl_s, grace_s=auth.refresh_grace_s),
    )


def required(form: Mapping[str, str], name: str) -> str:
    """A parameter that must be present and non-empty (RFC 6749 §5.2 invalid_request)."""
    value = form.get(name, "").strip()
    if not value:
        raise InvalidRequest(f"missing {name} param")
    return value


def optional(form: Mapping[str, str], name: str) -> str | None:
    value = form.get(name, "").strip()
    return value or None


async def refresh_grant(
    session: AsyncSession, runtime: Runtime, form: Mapping[str, str]
) -> dict[str, Any] | Refusal:
    """RFC 6749 §6: client_id (secret optional, verified if sent), rotated refresh token."""
    client_id = required(form, "client_id")
    presented = required(form, "refresh_token")
    requested = parse_scope(form.get("scope"))
    service = oauth_service(session, runtime)
    client = await service.authenticate(client_id, optional(form, "client_secret"))
    outcome = await service.refresh(client, presented, requested)
    if isinstance(outcome, Refusal):
        return outcome
    body = await _user_tokens(session, runtime, client, outcome)
    if requested is not None and outcome.scopes == requested:
        body["scope"] = " ".join(requested)
    return body


async def _user_tokens(
    session: AsyncSession, runtime: Runtime, client: OAuthClient, rotation: Rotation
) -> dict[str, Any]:
    user = await UserRepository(session).get(rotation.family.user_id)
    if user is None:
        raise LoginRequired("the account behind this refresh token no longer exists")
    tokens = runtime.tokens
    body: dict[str, Any] = {
        "access_token": tokens.mint(user.uuid, rotation.scopes, client_id=client.client_id),
        "refresh_token": rotation.refresh_token,
        "token_type": "Bearer",
        "expires_in": tokens.ttl_s,
    }
    if "openid" in rotation.scopes:
        body["id_token"] = tokens.mint_id_token(
            user.uuid,
            client_id=client.client_id,
            email=user.email,
            ttl_s=runtime.settings.auth.id_token_ttl_s,
        )
    return body


async def client_credentials_grant(
    session: AsyncSession, runtime: Runtime, form: Mapping[str, str]
) -> dict[str, Any]:
    """RFC 6749 §4.4: a partner token for a confidential app; `audience` is required."""
    client_id = required(form, "client_id")
    secret = required(form, "client_secret")
    audience = required(form, "audience")
    parts = urlsplit(audience)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise InvalidRequest("invalid audience param: expected a base URL such as https://host")
    requested = parse_scope(form.get("scope"))
    client = await oauth_service(session, runtime).authenticate(
        client_id, secret, require_secret=True
    )
    if client.client_type != "confidential":
        raise UnauthorizedClient("public clients cannot obtain partner tokens")
    scopes = partner_scopes(as_list(client.scopes), requested)
    token = runtime.tokens.mint(
        client.client_id, scopes, client_id=client.client_id, partner=True, audience=audience
    )
    body: dict[str, Any] = {
        "access_token": token,
        "token_type": "Bearer",
        "expires_in": runtime.tokens.ttl_s,
    }
    if requested is not None and scopes == requested:
        body["scope"] = " ".join(scopes)
    return body
