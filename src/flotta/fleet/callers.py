"""Who a Fleet API request comes from, worked out once per request for metering and rate limits.

Metering needs the account that pays (the owner of the token's app); rate limits need the app
and device whose budget the request spends, under the endpoint's own authorisation. One
resolution per credential and device, cached for a second, answers both: the middleware that
asks first leaves the Caller in the request's scope for the other. Resolving twice (a payer
cache in one middleware, a device cache in the other) cost P5 more than either's own work.
"""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request
from starlette.types import Scope

from flotta.auth.tokens import bearer_token
from flotta.billing.targets import Target
from flotta.caching import ExpiringCache
from flotta.errors import FlottaError
from flotta.fleet.deps import owner_of, principal, vehicle_for
from flotta.runtime import Runtime

# Where the first middleware leaves the request's Caller for the second.
CALLER_KEY = "flotta.caller"


@dataclass(frozen=True, slots=True)
class Payer:
    """The developer account billed for a request, and the app it made it with."""

    account_id: int
    client_id: str


@dataclass(frozen=True, slots=True)
class Caller:
    """`payer`: None for first-party tokens, for requests the endpoint refuses with 401, and
    without metering. `budget`: the (app, device) whose rate limits a request spends; None when
    it names no device, when its endpoint refuses it anyway (it keeps its 401/403/404 and
    spends nothing), and without rate limits."""

    payer: Payer | None
    budget: tuple[str, str] | None


NOBODY = Caller(None, None)
CacheKey = tuple[bytes, str, str]


def credential_of(scope: Scope) -> bytes | None:
    """The raw Authorization header."""
    for name, value in scope["headers"]:
        if name == b"authorization":
            return bytes(value)
    return None


class Callers:
    """Callers per credential and target, remembered for `ttl_s` (runtime clock).

    A second of memory adds a second to the Directory's own few seconds before a revoked
    consent or a removed car stops counting.
    """

    def __init__(self, ttl_s: float = 1.0, max_entries: int = 8192) -> None:
        self._cache: ExpiringCache[CacheKey, Caller] = ExpiringCache(ttl_s, max_entries)

    def known(self, scope: Scope, target: Target | None, runtime: Runtime) -> Caller | None:
        """The request's Caller without a coroutine when it is in the scope or the cache; None
        when `load` must resolve it."""
        if (caller := scope.get(CALLER_KEY)) is not None:
            return caller  # type: ignore[no-any-return]
        credential = credential_of(scope)
        if credential is None:
            scope[CALLER_KEY] = NOBODY
            return NOBODY
        key = _key(credential, target)
        if (hit := self._cache.fresh(key, runtime.clock.monotonic())) is not None:
            scope[CALLER_KEY] = hit[1]
            return hit[1]
        return None

    async def load(self, scope: Scope, target: Target | None, runtime: Runtime) -> Caller:
        """Resolve the request's Caller (after `known` said None), cache it, and leave it in
        the scope."""
        credential = credential_of(scope)
        if credential is None:
            caller = NOBODY
        else:

            async def resolve(_: CacheKey) -> Caller:
                # Only the halves switched on: each costs lookups, and may fail.
                metered, limited = runtime.meter is not None, runtime.limiter is not None
                return Caller(
                    await payer_of(credential, runtime) if metered else None,
                    await budget_of(scope, target) if limited else None,
                )

            key = _key(credential, target)
            caller = await self._cache.get(key, runtime.clock.monotonic(), resolve)
        scope[CALLER_KEY] = caller
        return caller


def _key(credential: bytes, target: Target | None) -> CacheKey:
    if target is None:
        return (credential, "", "")
    return (credential, target.kind, target.tag)


async def payer_of(credential: bytes, runtime: Runtime) -> Payer | None:
    """The developer account that owns the calling app, from the Authorization header; None
    for first-party tokens and for requests the endpoint will refuse with 401."""
    token = bearer_token(credential.decode("latin-1"))
    if token is None:
        return None
    try:
        who = runtime.tokens.verify(token)
    except FlottaError:
        return None
    app = await runtime.directory.app(who.client_id)
    if app is None or not app.approved or app.owner_id is None:
        return None
    return Payer(app.owner_id, app.client_id)


async def budget_of(scope: Scope, target: Target | None) -> tuple[str, str] | None:
    """(app, device) of a request its endpoint would serve; None when it names no device or its
    endpoint refuses it anyway.

    The same authorisation as the endpoint (every lookup is cached), so a request without a
    valid token, or naming a vehicle the caller cannot reach, never spends the budget of a car
    it cannot see.
    """
    if target is None:
        return None
    runtime: Runtime = scope["app"].state.runtime
    try:
        who = await principal(Request(scope))
        if target.kind == "vehicle":
            record = await vehicle_for(who, runtime, target.tag)
            # The VIN, whichever form the path used: a VIN and the Fleet id share one budget.
            return who.client_id, f"vehicle:{record.vin}"
        user = await owner_of(who, runtime)
    except FlottaError:
        return None
    # Sites are resolved in the database by their endpoints; keying by the caller's account too
    # means a request for someone else's site (a 404) spends only the caller's own budget.
    return who.client_id, f"site:{target.tag}:{user.id}"
