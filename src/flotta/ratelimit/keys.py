"""Which budget a request draws on: its route's category, its app and the device it names."""

from __future__ import annotations

from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.types import Scope

from flotta.billing.targets import Target
from flotta.caching import ExpiringCache
from flotta.errors import FlottaError
from flotta.fleet.deps import owner_of, principal, vehicle_for
from flotta.runtime import Runtime


class DeviceKeys:
    """`device_key` per credential and path tag, remembered for `ttl_s` (runtime clock).

    Authorising twice (here and in the endpoint) cost P5 more than the window itself; a second
    of memory adds a second to the Directory's own few seconds before a revoked consent or a
    removed car stops counting.
    """

    def __init__(self, ttl_s: float = 1.0, max_entries: int = 8192) -> None:
        self._cache: ExpiringCache[tuple[bytes, str, str], tuple[str, str] | None] = ExpiringCache(
            ttl_s, max_entries
        )

    async def of(self, scope: Scope, target: Target, runtime: Runtime) -> tuple[str, str] | None:
        credential = next((v for k, v in scope["headers"] if k == b"authorization"), None)
        if credential is None:
            return None  # the endpoint answers 401

        key = (credential, target.kind, target.tag)
        now = runtime.clock.monotonic()
        if (hit := self._cache.fresh(key, now)) is not None:
            return hit[1]

        async def load(_: tuple[bytes, str, str]) -> tuple[str, str] | None:
            return await device_key(scope, target, runtime)

        return await self._cache.get(key, now, load)


async def device_key(scope: Scope, target: Target, runtime: Runtime) -> tuple[str, str] | None:
    """(app, device) of a request its endpoint would serve; None when it refuses it anyway.

    The same authorisation as the endpoint (every lookup is cached), so a request without a
    valid token, or naming a vehicle the caller cannot reach, keeps its 401/403/404 and never
    spends the budget of a car it cannot see.
    """
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


def token_client(body: bytes, scope: Scope) -> tuple[str, str]:
    """Who a token request counts against: the form's client_id, else the client's address."""
    try:
        for name, value in parse_qsl(body.decode(), keep_blank_values=True):
            if name == "client_id" and value:
                return "client", value[:128]
    except (UnicodeDecodeError, ValueError):
        pass
    client = scope.get("client")
    return "ip", str(client[0]) if client else "unknown"
