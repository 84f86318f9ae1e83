"""One ASGI middleware applies every rate limit, so no endpoint has to remember to."""

from __future__ import annotations

from collections.abc import Sequence

import orjson
from fastapi.routing import APIRoute
from starlette.responses import Response
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from flotta.billing.categories import Category, category_for
from flotta.billing.targets import TARGET_KEY, Target, Targets
from flotta.errors import FlottaError, error_response
from flotta.fleet.callers import Callers
from flotta.ratelimit.keys import token_client
from flotta.ratelimit.limiter import TOKEN, RateLimiter, Refusal
from flotta.runtime import Runtime

TOKEN_PATH = "/oauth2/v3/token"
# The token endpoint refuses larger forms itself; reading past this only wastes memory.
MAX_TOKEN_BODY = 16_384
# tesla-fleet-api maps any 429 to RateLimited; Tesla's own body was plain text then.
RATE_LIMITED_KEY = "rate limit exceeded"
LIMITED = frozenset({Category.DATA, Category.COMMANDS, Category.WAKES})
DESCRIPTION_429 = "Rate limited: the headers say when a request will be admitted again"
HEADERS_429 = {
    "Retry-After": "Seconds to wait (at least 1)",
    "RateLimit-Limit": "Requests allowed in the window",
    "RateLimit-Remaining": "Requests left in the window (0)",
    "RateLimit-Reset": "Seconds until a request is admitted again",
}
WHAT = {
    "data": "data requests for this device",
    "commands": "commands to this device",
    "wakes": "wakes of this vehicle",
    TOKEN: "token requests for this app",
}


def limit_headers(refusal: Refusal) -> dict[str, str]:
    """Reference §6-7: Retry-After and RateLimit-* (Reset in seconds, as Tesla sent it)."""
    return {
        "Retry-After": str(refusal.reset_s),
        "RateLimit-Limit": str(refusal.limit),
        "RateLimit-Remaining": str(refusal.remaining),
        "RateLimit-Reset": str(refusal.reset_s),
    }


def describe(refusal: Refusal) -> str:
    return (
        f"Retry in {refusal.reset_s} seconds: {WHAT.get(refusal.bucket, refusal.bucket)} "
        f"are limited to {refusal.window} per app"
    )


def fleet_refusal(refusal: Refusal) -> Response:
    """Tesla's error envelope with status 429."""
    error = FlottaError(
        describe(refusal), status=429, key=RATE_LIMITED_KEY, headers=limit_headers(refusal)
    )
    return error_response(error)


def token_refusal(refusal: Refusal) -> Response:
    """The token endpoint's own error shape (RFC 6749 §5.2), with the same headers."""
    body = {"error": "rate_limited", "error_description": describe(refusal)}
    headers = {"Cache-Control": "no-store", **limit_headers(refusal)}
    return Response(orjson.dumps(body), 429, headers=headers, media_type="application/json")


def declare_limited_responses(routes: Sequence[BaseRoute]) -> None:
    """Add 429 to the OpenAPI responses of every limited operation (idempotent).

    The body is the one the route's 401 declares: Tesla's envelope, or RFC 6749's on the token
    endpoint.
    """
    for route in routes:
        if not isinstance(route, APIRoute) or 429 in route.responses:
            continue
        limited = route.path == TOKEN_PATH or any(
            category_for(method, route.path_format) in LIMITED for method in route.methods or ()
        )
        unauthorized = route.responses.get(401)
        if limited and unauthorized is not None:
            headers = {
                name: {"description": text, "schema": {"type": "integer"}}
                for name, text in HEADERS_429.items()
            }
            route.responses[429] = {
                **unauthorized,
                "description": DESCRIPTION_429,
                "headers": headers,
            }
            if 401 in route.response_fields:
                route.response_fields[429] = route.response_fields[401]


class RateLimitMiddleware:
    """Counts limited requests before their endpoint runs; free operations pass untouched."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._targets = Targets()
        self._callers = Callers()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        limiter, runtime = self._limiter(scope)
        if limiter is None or runtime is None:
            await self.app(scope, receive, send)
            return
        if scope["path"] == TOKEN_PATH and scope["method"] == "POST":
            await self._token(scope, receive, send, limiter)
            return
        target = targeted(scope, self._targets)
        if target is not None:
            callers = self._callers
            caller = callers.known(scope, target, runtime) or await callers.load(
                scope, target, runtime
            )
            budget = caller.budget
            if budget is not None and not limiter.admits(target.category, budget):
                refusal = await limiter.hit(target.category, *budget)
                if refusal is not None:
                    await fleet_refusal(refusal)(scope, receive, send)
                    return
        await self.app(scope, receive, send)

    @staticmethod
    def _limiter(scope: Scope) -> tuple[RateLimiter | None, Runtime | None]:
        if scope["type"] != "http":
            return None, None
        runtime: Runtime | None = getattr(scope["app"].state, "runtime", None)
        return (runtime.limiter if runtime is not None else None), runtime

    async def _token(
        self, scope: Scope, receive: Receive, send: Send, limiter: RateLimiter
    ) -> None:
        """Read the form (to learn its client_id), count it, then hand the same body on."""
        messages = await read_body(receive)
        body = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.request")
        refusal = await limiter.hit(TOKEN, *token_client(body, scope))
        if refusal is not None:
            await token_refusal(refusal)(scope, receive, send)
            return

        async def replay() -> Message:
            return messages.pop(0) if messages else await receive()

        await self.app(scope, replay, send)


def targeted(scope: Scope, targets: Targets) -> Target | None:
    """The request's priced operation, as the metering middleware found it, or found here."""
    if TARGET_KEY in scope:
        found: Target | None = scope[TARGET_KEY]
        return found
    return targets.of(scope, scope["app"].router.routes)


async def read_body(receive: Receive) -> list[Message]:
    """The request's messages up to the end of its body (or MAX_TOKEN_BODY bytes)."""
    messages: list[Message] = []
    size = 0
    while size <= MAX_TOKEN_BODY:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request" or not message.get("more_body", False):
            break
        size += len(message.get("body", b""))
    return messages
