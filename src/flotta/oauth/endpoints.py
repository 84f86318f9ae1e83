"""OAuth HTTP surface: token (RFC 6749), revoke (RFC 7009), OIDC discovery and JWKS."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

import orjson
from fastapi import APIRouter, Request
from pydantic import BaseModel
from starlette.responses import Response

from flotta.auth.scopes import KNOWN_SCOPES
from flotta.fleet.deps import RuntimeDep
from flotta.oauth.codes import CodeRefusal
from flotta.oauth.errors import (
    InvalidRequest,
    OAuthError,
    UnsupportedGrantType,
    UnsupportedTokenType,
)
from flotta.oauth.grants import (
    GRANT_TYPES,
    authorization_code_grant,
    client_credentials_grant,
    oauth_service,
    optional,
    refresh_grant,
    required,
)
from flotta.oauth.service import Refusal
from flotta.runtime import Runtime

router = APIRouter(tags=["oauth"])

TOKEN_PATH = "/oauth2/v3/token"
REVOKE_PATH = "/oauth2/v3/revoke"
JWKS_PATH = "/oauth2/v3/discovery/keys"
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
MAX_FORM_BYTES = 16_384


class OAuthErrorBody(BaseModel):
    error: str
    error_description: str = ""


class TokenBody(BaseModel):
    access_token: str
    token_type: str
    expires_in: int
    refresh_token: str | None = None
    id_token: str | None = None
    scope: str | None = None


def _form_schema(fields: dict[str, str], needed: list[str]) -> dict[str, Any]:
    props = {name: {"type": "string", "description": text} for name, text in fields.items()}
    schema = {"type": "object", "properties": props, "required": needed}
    content = {"application/x-www-form-urlencoded": {"schema": schema}}
    return {"requestBody": {"required": True, "content": content}}


TOKEN_FORM = _form_schema(
    {
        "grant_type": "authorization_code, refresh_token or client_credentials",
        "client_id": "the app's client_id",
        "client_secret": "required for confidential apps exchanging a code and for partner "
        "tokens; optional on refresh (verified when sent); public apps send none",
        "code": "authorization_code: the code from the authorize redirect (single use, 10 min)",
        "redirect_uri": "authorization_code: exactly the redirect_uri sent to authorize",
        "code_verifier": "authorization_code: the PKCE verifier (S256), required when the "
        "authorize request had a code_challenge and refused when it had none",
        "refresh_token": "refresh grant: the current refresh token",
        "scope": "space-delimited; a subset of the granted scopes",
        "audience": "the Fleet API base URL the token is for: required for client_credentials, "
        "optional for authorization_code",
    },
    ["grant_type", "client_id"],
)
REVOKE_FORM = _form_schema(
    {
        "token": "a refresh token",
        "token_type_hint": "refresh_token (access tokens are not revocable)",
        "client_id": "the app's client_id",
        "client_secret": "verified when sent",
    },
    ["token", "client_id"],
)
ERRORS: dict[int | str, dict[str, Any]] = {
    400: {
        "model": OAuthErrorBody,
        "description": "invalid_request, unsupported_grant_type, "
        "unauthorized_client (unknown client_id or wrong secret), invalid_auth_code (unknown, "
        "expired or used code, or PKCE verifier mismatch), invalid_redirect_url",
    },
    401: {
        "model": OAuthErrorBody,
        "description": "login_required: refresh token expired, revoked or reused",
    },
    403: {"model": OAuthErrorBody, "description": "invalid_scope"},
}


def json_response(body: dict[str, Any], status: int = 200) -> Response:
    return Response(
        orjson.dumps(body), status_code=status, media_type="application/json", headers=NO_STORE
    )


def oauth_error(error: OAuthError) -> Response:
    """RFC 6749 §5.2 body with Tesla's key; never echoes a submitted secret or token."""
    body = {"error": error.key, "error_description": error.description}
    return json_response(body, error.status)


async def read_form(request: Request) -> dict[str, str]:
    """The urlencoded body; repeated or undecodable parameters are invalid (RFC 6749 §3.2)."""
    raw = await request.body()
    if len(raw) > MAX_FORM_BYTES:
        raise InvalidRequest("the request body is too large")
    if request.headers.get("content-type", "").startswith("application/json"):
        # Its members would not be read: "missing grant_type param" would mislead.
        raise InvalidRequest("send an application/x-www-form-urlencoded body, not JSON")
    try:
        pairs = parse_qsl(raw.decode(), keep_blank_values=True, strict_parsing=False)
    except (UnicodeDecodeError, ValueError) as exc:
        raise InvalidRequest("send an application/x-www-form-urlencoded body") from exc
    form: dict[str, str] = {}
    for name, value in pairs:
        if name in form:
            raise InvalidRequest(f"repeated {name} param")
        form[name] = value
    return form


@router.post(
    TOKEN_PATH,
    summary="Token endpoint (authorization_code, refresh_token, client_credentials)",
    response_model=TokenBody,
    responses=ERRORS,
    openapi_extra=TOKEN_FORM,
)
async def token(request: Request, runtime: RuntimeDep) -> Response:
    """RFC 6749 §3.2 token endpoint with Tesla's fields (reference §2.3)."""
    try:
        form = await read_form(request)
        grant_type = required(form, "grant_type")
        if grant_type not in GRANT_TYPES:
            raise UnsupportedGrantType(f"use one of {', '.join(GRANT_TYPES)}")
        outcome: dict[str, Any] | Refusal | CodeRefusal
        async with runtime.sessions() as session, session.begin():
            if grant_type == "authorization_code":
                outcome = await authorization_code_grant(session, runtime, form)
            elif grant_type == "refresh_token":
                outcome = await refresh_grant(session, runtime, form)
            else:
                outcome = await client_credentials_grant(session, runtime, form)
    except OAuthError as error:
        return oauth_error(error)
    if isinstance(outcome, Refusal | CodeRefusal):
        return oauth_error(outcome.error)  # committed first: a revoked family stays revoked
    return json_response(outcome)


@router.post(
    REVOKE_PATH, summary="Revoke a refresh token", responses=ERRORS, openapi_extra=REVOKE_FORM
)
async def revoke(request: Request, runtime: RuntimeDep) -> Response:
    """RFC 7009: revoke a refresh token's whole family; unknown tokens also answer 200."""
    try:
        form = await read_form(request)
        presented = required(form, "token")
        client_id = required(form, "client_id")
        if form.get("token_type_hint") == "access_token" or presented.count(".") == 2:
            raise UnsupportedTokenType(
                "access tokens expire on their own; revoke the refresh token"
            )
        async with runtime.sessions() as session, session.begin():
            service = oauth_service(session, runtime)
            client = await service.authenticate(client_id, optional(form, "client_secret"))
            await service.revoke(client, presented)
    except OAuthError as error:
        return oauth_error(error)
    return json_response({})


def discovery(runtime: Runtime) -> dict[str, Any]:
    """OpenID Connect Discovery 1.0 §3 metadata for this server."""
    base = runtime.settings.public_base_url
    return {
        "issuer": runtime.settings.auth.issuer,
        "authorization_endpoint": f"{base}/oauth2/v3/authorize",
        "token_endpoint": f"{base}{TOKEN_PATH}",
        "revocation_endpoint": f"{base}{REVOKE_PATH}",
        "jwks_uri": f"{base}{JWKS_PATH}",
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "code_challenge_methods_supported": ["S256"],
        "grant_types_supported": list(GRANT_TYPES),
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["ES256"],
        "token_endpoint_auth_methods_supported": ["client_secret_post", "none"],
        "scopes_supported": sorted(KNOWN_SCOPES),
        "claims_supported": [
            "iss",
            "sub",
            "aud",
            "iat",
            "exp",
            "nonce",
            "email",
            "email_verified",
        ],
    }


@router.get("/oauth2/v3/thirdparty/.well-known/openid-configuration", include_in_schema=False)
async def openid_configuration(runtime: RuntimeDep) -> Response:
    return json_response(discovery(runtime))


@router.get("/.well-known/openid-configuration", include_in_schema=False)
async def root_openid_configuration(runtime: RuntimeDep) -> Response:
    return json_response(discovery(runtime))


@router.get(JWKS_PATH, include_in_schema=False)
async def jwks(runtime: RuntimeDep) -> Response:
    """The public signing key (RFC 7517), so clients can verify access and id tokens."""
    return json_response(runtime.tokens.public_jwks())
