"""Request authorisation shared by every Fleet API endpoint: token, consent, scopes, vehicle.

First-party tokens (`flotta token`, apps marked first_party such as `ownerapi`) act as the
owner. A third-party app's token reaches only what the owner's consent grant allows, as of this
request: scopes are the token's intersected with the grant's, and vehicles outside the grant
look absent (404).
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from dataclasses import replace
from typing import Annotated, Any

from fastapi import Depends, Path, Request

from flotta.auth.tokens import Principal, bearer_token
from flotta.devices.directory import UserRecord, VehicleRecord
from flotta.errors import FlottaError, MissingScopes, NotFound, Unauthorized
from flotta.runtime import Runtime

# `flotta token` and tokens minted by the server itself.
CLI_CLIENT_ID = "flotta-cli"
REGISTER_DOCS = "https://developer.tesla.com/docs/fleet-api/endpoints/partner-endpoints#register"


class PartnerTokenRefused(FlottaError):
    """A partner (client_credentials) token on a user or vehicle endpoint."""

    status = 403
    key = "Unauthorized partner token"


class AppNotRegistered(FlottaError):
    """Reference §6: 412 until the app calls `POST /api/1/partner_accounts` in this region."""

    status = 412


async def runtime_of(request: Request) -> Runtime:
    """The app's Runtime. Async on purpose: FastAPI runs sync dependencies in a thread pool."""
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(runtime_of)]


async def principal(request: Request) -> Principal:
    """The caller behind `Authorization: Bearer <access token>`; 401 otherwise."""
    header = request.headers.get("authorization")
    if not header:
        raise Unauthorized("send Authorization: Bearer <access token>")
    token = bearer_token(header)
    if token is None:
        raise Unauthorized("the Authorization header must be 'Bearer <access token>'")
    runtime: Runtime = request.app.state.runtime
    who = runtime.tokens.verify(token)
    if who.partner or who.client_id == CLI_CLIENT_ID:
        return who  # partner endpoints check partner tokens; the CLI acts as the owner
    return await consented(who, runtime)


async def owners_tool(who: Principal, runtime: Runtime) -> bool:
    """Whether the token is the owner's own tool (the CLI's, or a first-party app's), which
    needs no consent and no virtual key."""
    if who.client_id == CLI_CLIENT_ID:
        return True
    app = await runtime.directory.app(who.client_id)
    return app is not None and app.first_party


async def consented(who: Principal, runtime: Runtime) -> Principal:
    """Limit a third-party app's token to the owner's current consent (cached, see Directory)."""
    app = await runtime.directory.app(who.client_id)
    if app is None or not app.approved:
        raise Unauthorized("the app this token was issued to is no longer registered or approved")
    if app.first_party:
        return who
    if app.confidential and not app.partner_registered:
        base = runtime.settings.public_base_url
        raise AppNotRegistered(
            "call POST /api/1/partner_accounts with a partner token (grant_type="
            "client_credentials) to register this app's domain in this region",
            key=f"Account {app.client_id} must be registered in the current region {base}, "
            f"please see {REGISTER_DOCS}",
        )
    user = await runtime.directory.user(who.subject)
    grant = await runtime.directory.grant(user.id, app.pk) if user is not None else None
    if grant is None:
        raise Unauthorized(
            "the account owner revoked this app's access (consent); "
            "send them through /oauth2/v3/authorize again"
        )
    return replace(who, scopes=who.scopes & grant.scopes, devices=grant.vehicle_ids)


PrincipalDep = Annotated[Principal, Depends(principal)]


def require_scopes(*any_of: str) -> Callable[..., Coroutine[Any, Any, Principal]]:
    """Dependency: the token must carry at least one of `any_of` (Tesla's 403 otherwise)."""
    needed = frozenset(any_of)

    async def check(who: PrincipalDep) -> Principal:
        if needed and not (who.scopes & needed):
            raise MissingScopes(f"this endpoint needs one of these scopes: {' '.join(any_of)}")
        return who

    return check


async def owner_of(principal: Principal, runtime: Runtime) -> UserRecord:
    """The account behind a user token; partner tokens have none (403)."""
    if principal.partner:
        raise PartnerTokenRefused(
            "partner tokens (client_credentials) reach only partner endpoints; "
            "use a token from the authorization_code grant for user and vehicle endpoints"
        )
    user = await runtime.directory.user(principal.subject)
    if user is None:
        raise Unauthorized("the token's account no longer exists")
    return user


async def vehicle_for(
    principal: Principal, runtime: Runtime, tag: str, *, owner_only: bool = False
) -> VehicleRecord:
    """Resolve `{vehicle_tag}` for its owner or a driver, within the app's consent.

    Anything else, including a vehicle the owner did not select for the app, looks absent (404).
    """
    user = await owner_of(principal, runtime)
    record = await runtime.directory.vehicle(tag)
    if record is not None and may_reach(principal, record):
        if record.owner_id == user.id:
            return record
        if not owner_only and record.id in await runtime.directory.driven_by(user.id):
            return record
    raise NotFound(f"no vehicle {tag!r} on this account", key="not_found")


def may_reach(principal: Principal, record: VehicleRecord) -> bool:
    """Whether the token's consent covers the vehicle (first-party tokens: every vehicle)."""
    return principal.devices is None or record.id in principal.devices


async def visible_vehicles(
    principal: Principal, runtime: Runtime, *, owned_only: bool = False
) -> list[VehicleRecord]:
    """The account's vehicles (owned, then driven) that this token may reach."""
    user = await owner_of(principal, runtime)
    if owned_only:
        records = list(await runtime.directory.vehicles_of(user.id))
    else:
        records = await runtime.directory.visible_to(user.id)
    return [r for r in records if may_reach(principal, r)]


def access_type(user: UserRecord, record: VehicleRecord) -> str:
    """Tesla's `access_type`: the owner, or a driver the owner shared the car with."""
    return "OWNER" if record.owner_id == user.id else "DRIVER"


VehicleTag = Annotated[
    str,
    Path(
        min_length=1,
        max_length=20,
        pattern=r"^[A-Za-z0-9]+$",
        description="The vehicle's 17-character VIN or its numeric Fleet id",
    ),
]
