"""RFC 6749 grants at `/oauth2/v3/token`: authorization_code, refresh_token, client_credentials."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy.ext.asyncio import AsyncSession

from flotta.accounts.models import User
from flotta.accounts.repository import UserRepository
from flotta.oauth.codes import CodeRefusal, CodeService
from flotta.oauth.consent import ConsentService
from flotta.oauth.errors import InvalidAuthCode, InvalidRequest, LoginRequired, UnauthorizedClient
from flotta.oauth.models import AuthorizationCode, OAuthClient, as_list
from flotta.oauth.repository import OAuthRepository
from flotta.oauth.scopes import parse_scope, partner_scopes, refresh_scopes
from flotta.oauth.service import Lifetimes, OAuthService, Refusal, Rotation, hmac_hash
from flotta.runtime import Runtime

GRANT_TYPES = ("authorization_code", "refresh_token", "client_credentials")


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


def code_service(session: AsyncSession, runtime: Runtime) -> CodeService:
    """Authorization codes with the runtime's secret key, clock and region."""
    return CodeService(
        session,
        secret_key=runtime.settings.secret_key,
        clock=runtime.clock,
        region=runtime.settings.auth.region,
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
    if not client.first_party:
        consent = await ConsentService(session, runtime.clock).active(
            outcome.family.user_id, client.id
        )
        if consent is None:  # raised, not returned: the rotation above is rolled back
            raise LoginRequired("the account owner revoked this app's access; authorize again")
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
    secret = form.get("client_secret", "").strip()
    audience = _audience(required(form, "audience"))
    requested = parse_scope(form.get("scope"))
    if not secret:
        # Said as docs/oauth.md says it: which of the two the app got wrong.
        known = await OAuthRepository(session).client(client_id)
        if known is not None and known.client_type != "confidential":
            raise UnauthorizedClient("public clients cannot obtain partner tokens")
        raise UnauthorizedClient("a partner token needs the app's client_secret")
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


def _audience(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise InvalidRequest("invalid audience param: expected a base URL such as https://host")
    return value


async def authorization_code_grant(
    session: AsyncSession, runtime: Runtime, form: Mapping[str, str]
) -> dict[str, Any] | CodeRefusal:
    """RFC 6749 §4.1.3: a confidential app authenticates, a public one proved PKCE at authorize.

    `audience` is optional (tescmd omits it); when sent it must be a base URL and joins `aud`.
    """
    client_id = required(form, "client_id")
    code = required(form, "code")
    redirect_uri = required(form, "redirect_uri")
    secret = optional(form, "client_secret")
    sent_audience = optional(form, "audience")
    audience = _audience(sent_audience) if sent_audience else None
    requested = parse_scope(form.get("scope"))
    client = await oauth_service(session, runtime).authenticate(client_id, secret)
    if client.client_type == "confidential" and secret is None:
        raise UnauthorizedClient("a confidential app must send its client_secret")
    outcome = await code_service(session, runtime).redeem(
        client, code, redirect_uri=redirect_uri, verifier=optional(form, "code_verifier")
    )
    if isinstance(outcome, CodeRefusal):
        return outcome
    user = await UserRepository(session).get(outcome.user_id)
    consent = await ConsentService(session, runtime.clock).active(outcome.user_id, client.id)
    if user is None or (consent is None and not client.first_party):
        # The code stays used (committed): the owner withdrew consent since authorizing.
        return CodeRefusal(InvalidAuthCode("access was revoked since authorizing; authorize again"))
    granted = as_list(outcome.scopes)
    if consent is not None:  # narrowed in the console since authorizing: the narrower wins
        granted = [s for s in granted if s in as_list(consent.scopes)]
    scopes = refresh_scopes(granted, requested, held_by="this authorization code")
    return await _code_tokens(session, runtime, client, user, outcome, (granted, scopes), audience)


async def _code_tokens(
    session: AsyncSession,
    runtime: Runtime,
    client: OAuthClient,
    user: User,
    row: AuthorizationCode,
    granted_and_minted: tuple[list[str], list[str]],
    audience: str | None,
) -> dict[str, Any]:
    """The token response; the refresh-token family keeps everything the code granted."""
    granted, scopes = granted_and_minted
    tokens = runtime.tokens
    body: dict[str, Any] = {
        "access_token": tokens.mint(
            user.uuid, scopes, client_id=client.client_id, audience=audience
        ),
        "token_type": "Bearer",
        "expires_in": tokens.ttl_s,
        "scope": " ".join(scopes),
    }
    if "offline_access" in scopes:
        service = oauth_service(session, runtime)
        refresh_token = await service.issue(client, user.id, granted)
        issued = await service.repo.token_by_hash(hmac_hash(service.secret_key, refresh_token))
        if issued is not None:
            await code_service(session, runtime).bind_family(row, issued.family_id)
        body["refresh_token"] = refresh_token
    if "openid" in scopes:
        body["id_token"] = tokens.mint_id_token(
            user.uuid,
            client_id=client.client_id,
            email=user.email,
            ttl_s=runtime.settings.auth.id_token_ttl_s,
            nonce=row.nonce,
        )
    return body
