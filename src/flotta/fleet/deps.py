"""Request authorisation shared by every Fleet API endpoint: token, scopes, owner, vehicle."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import Depends, Path, Request

from flotta.auth.tokens import Principal
from flotta.devices.directory import UserRecord, VehicleRecord
from flotta.errors import MissingScopes, NotFound, Unauthorized
from flotta.runtime import Runtime


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
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("the Authorization header must be 'Bearer <access token>'")
    runtime: Runtime = request.app.state.runtime
    return runtime.tokens.verify(token.strip())


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
    user = await runtime.directory.user(principal.subject)
    if user is None:
        raise Unauthorized("the token's account no longer exists")
    return user


async def vehicle_for(
    principal: Principal, runtime: Runtime, tag: str, *, owner_only: bool = False
) -> VehicleRecord:
    """Resolve `{vehicle_tag}` for its owner or a driver. Anything else looks absent (404)."""
    user = await owner_of(principal, runtime)
    record = await runtime.directory.vehicle(tag)
    if record is not None and record.owner_id == user.id:
        return record
    if (
        record is not None
        and not owner_only
        and record.id in await runtime.directory.driven_by(user.id)
    ):
        return record
    raise NotFound(f"no vehicle {tag!r} on this account", key="not_found")


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
