"""One ASGI middleware meters every Fleet API request, so no endpoint has to remember to.

Before the endpoint runs it refuses the apps of an account past its threshold. When the
response starts it decides, from the status and the billing policy, whether the request is
billed; a billed request is committed to the ledger before its response leaves. Every response
says what it was billed as in the headers documented in docs/billing.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import structlog
from fastapi.routing import APIRoute
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from flotta.billing.events import UsageEvent
from flotta.billing.meter import BILLING_CATEGORY_HEADER as CATEGORY
from flotta.billing.meter import FREE, AccountMonth, Meter
from flotta.billing.targets import TARGET_KEY, Target, Targets
from flotta.errors import FlottaError, error_response
from flotta.fleet.callers import Caller, Callers, Payer
from flotta.runtime import Runtime

log = structlog.get_logger(__name__)

FLEET_PREFIX = "/api/1/"
EXCEEDED_KEY = "account disabled: EXCEEDED_LIMIT"
# Response headers (docs/billing.md lists them; the OpenAPI document declares them; the ones
# that depend only on the category are built by the Meter).
CREDIT_LEFT = b"flotta-credit-remaining"
USAGE_ID = b"flotta-usage-id"
BUDGET_WARNING = b"flotta-budget-warning"
HEADERS = {
    "Flotta-Billing-Category": "The pricing category: commands, data, wakes, or free",
    "Flotta-Billing-Cost": "What this request cost, exact (0 when it was not billed)",
    "Flotta-Billing-Currency": "The price book's currency (ISO 4217)",
    "Flotta-Credit-Remaining": "Monthly credit left after this request, cut to 6 decimals",
    "Flotta-Usage-Id": "The ledger entry of a billed request (its idempotency key): when it "
    "was made (µs since the epoch, 16 hex digits), '-', then 96 random bits (24 hex digits)",
}


def declare_billing_headers(routes: Sequence[BaseRoute]) -> None:
    """Add the billing headers to the success response of every Fleet API operation."""
    headers = {
        name: {"description": meaning, "schema": {"type": "string"}}
        for name, meaning in HEADERS.items()
    }
    for route in routes:
        if not isinstance(route, APIRoute) or not route.path.startswith(FLEET_PREFIX):
            continue
        success = route.responses.setdefault(route.status_code or 200, {})
        success.setdefault("headers", {}).update(headers)
        forbidden = route.responses.get(403) or route.responses.get(401)
        if forbidden is not None and EXCEEDED_KEY not in forbidden.get("description", ""):
            described = forbidden.get("description", "Forbidden")
            if 403 not in route.responses and 401 in route.response_fields:
                route.response_fields[403] = route.response_fields[401]
                described = "Forbidden"
            route.responses[403] = {
                **forbidden,
                "description": f"{described}; or {EXCEEDED_KEY}: the account's usage reached "
                "its billing threshold this month",
            }


class AccountDisabled(FlottaError):
    """Reference §8: an account past its billing threshold has its apps refused."""

    status = 403
    key = EXCEEDED_KEY


class MeteringMiddleware:
    """Meters /api/1/ requests made with a third-party app's token; a no-op without a Meter."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._targets = Targets()
        self._callers = Callers()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        runtime = _runtime(scope)
        if runtime is None or runtime.meter is None or not scope["path"].startswith(FLEET_PREFIX):
            await self.app(scope, receive, send)
            return
        meter = runtime.meter
        target = self._targets.of(scope, scope["app"].router.routes)
        scope[TARGET_KEY] = target
        callers = self._callers
        caller = callers.known(scope, target, runtime) or await callers.load(scope, target, runtime)
        payer = caller.payer
        if payer is None:  # no valid third-party token: nothing to bill (the endpoint says 401)
            await self.app(scope, receive, _labelled(send, target))
            return
        # One instant for the request: the month its threshold is checked in is the month its
        # usage is billed to, even when it is served across midnight at a month's end.
        admitted = runtime.clock.now()
        month = meter.current(payer.account_id, admitted) or await meter.month(
            payer.account_id, admitted
        )
        if meter.past_threshold(month):
            refusal = AccountDisabled(
                "this account's usage reached its billing threshold for the month; raise the "
                "threshold in the portal (it needs a payment method) or wait for the next month"
            )
            # Free, and labelled like any metered response: the account is known.
            free = _free(send, meter, payer, target, month, admitted)
            await error_response(refusal)(scope, receive, free)
            return

        async def metered(message: Message) -> None:
            if message["type"] == "http.response.start":
                billed = target if meter.billable(message["status"]) else None
                device = ""
                if billed is not None:  # a Fleet id the rate limits did not resolve: look it up
                    device = (
                        billed.device or _budget_device(caller) or await _device(runtime, billed)
                    )
                message = _bill(message, meter, payer, target, billed, device, month, admitted)
            await send(message)

        await self.app(scope, receive, metered)


def _bill(
    message: Message,
    meter: Meter,
    payer: Payer,
    target: Target | None,
    billed: Target | None,
    device: str,
    month: AccountMonth,
    occurred_at: datetime,
) -> Message:
    """Record a billed response (`billed` is its target) in the ledger, then add the billing
    headers. Every metered response runs this before it leaves: it is kept to plain lookups."""
    headers = list(message.get("headers", ()))
    if billed is not None:
        category = billed.category
        key = meter.new_key()
        meter.record(
            UsageEvent(
                key,
                payer.account_id,
                payer.client_id,
                device,
                category,
                1,
                occurred_at,
                message["status"],
            )
        )
        # The month may have been reloaded while the endpoint ran: show the one just counted.
        month = meter.cached(payer.account_id) or month
        headers += meter.billed_headers[category]
        headers.append((USAGE_ID, key.encode()))
    else:
        headers += meter.free_headers(None if target is None else target.category)
    headers.append((CREDIT_LEFT, meter.credit_left(month)))
    if month.budget_atoms and meter.over_budget(month, payer.client_id):
        headers.append((BUDGET_WARNING, b"this app is past the monthly budget set for it"))
    message["headers"] = headers
    return message


def _free(
    send: Send,
    meter: Meter,
    payer: Payer,
    target: Target | None,
    month: AccountMonth,
    admitted: datetime,
) -> Send:
    """A response the paying account is not billed for, whatever its status and the policy."""

    async def free(message: Message) -> None:
        if message["type"] == "http.response.start":
            message = _bill(message, meter, payer, target, None, "", month, admitted)
        await send(message)

    return free


def _labelled(send: Send, target: Target | None) -> Send:
    """Only the category: the request is not attributable to a paying account."""
    category = (FREE if target is None else target.category).encode()

    async def labelled(message: Message) -> None:
        if message["type"] == "http.response.start":
            message = {**message, "headers": [*message.get("headers", []), (CATEGORY, category)]}
        await send(message)

    return labelled


def _budget_device(caller: Caller) -> str | None:
    """The vehicle as the caller's rate-limit budget names it (by VIN), when limits are on."""
    return None if caller.budget is None else caller.budget[1]


async def _device(runtime: Runtime, target: Target) -> str:
    """The vehicle a Fleet id names, as the dashboard shows it (Target.device has the rest)."""
    record = await runtime.directory.vehicle(target.tag)
    return f"vehicle:{record.vin if record is not None else target.tag}"


def _runtime(scope: Scope) -> Runtime | None:
    if scope["type"] != "http":
        return None
    runtime: Runtime | None = getattr(scope["app"].state, "runtime", None)
    return runtime
