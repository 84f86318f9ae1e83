"""`create_app(settings)`: the FastAPI application with its Runtime built in the lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from flotta.billing import endpoints as billing_endpoints
from flotta.billing.middleware import MeteringMiddleware, declare_billing_headers
from flotta.clock import Clock
from flotta.errors import install_error_handlers
from flotta.fleet import commands, partner, sharing, subscriptions, users, vehicle_info, vehicles
from flotta.fleet import energy as fleet_energy
from flotta.fleet import keys as fleet_keys
from flotta.fleet import telemetry as fleet_telemetry
from flotta.fleet.errors_doc import declare_validation_errors
from flotta.gateway import endpoints as gateway_endpoints
from flotta.logs import configure_logging
from flotta.oauth import authorize as oauth_authorize
from flotta.oauth import endpoints as oauth_endpoints
from flotta.portal import (
    account_pages,
    admin_pages,
    app_pages,
    billing_pages,
    console_pages,
    outbox_pages,
    usage_pages,
)
from flotta.portal.web import PORTAL, install_portal_handlers
from flotta.ratelimit.middleware import RateLimitMiddleware, declare_limited_responses
from flotta.runtime import Runtime
from flotta.settings import Settings
from flotta.telemetry import sinks_api as telemetry_sinks
from flotta.telemetry import sinks_edit as telemetry_sinks_edit
from flotta.telemetry import stream as telemetry_stream

Hook = Callable[[Runtime], Awaitable[None]]


def create_app(
    settings: Settings,
    *,
    clock: Clock | None = None,
    on_started: Hook | None = None,
    on_stopping: Hook | None = None,
) -> FastAPI:
    """Build the app. `on_started`/`on_stopping` let `flotta demo` run its simulator alongside."""
    configure_logging(settings.log_level)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime = await Runtime.start(settings, clock)
        app.state.runtime = runtime
        try:
            if on_started is not None:
                await on_started(runtime)
            yield
        finally:
            if on_stopping is not None:
                await on_stopping(runtime)
            await runtime.stop()

    app = FastAPI(
        title="Flotta Fleet API",
        version="0.1.0",
        description="A self-hostable Fleet API, wire-compatible with Tesla's Fleet API.",
        lifespan=lifespan,
    )
    install_error_handlers(app)
    install_portal_handlers(app)
    # Issue 4: one place counts every limited request; a no-op when limits are switched off.
    app.add_middleware(RateLimitMiddleware)
    # Outside the limits, so a 429 is metered too (billed only under the `tesla` policy).
    app.add_middleware(MeteringMiddleware)

    for module in (
        users,
        vehicles,
        vehicle_info,
        sharing,
        subscriptions,
        commands,
        fleet_energy,
        fleet_telemetry,
        telemetry_stream,
        telemetry_sinks,
        telemetry_sinks_edit,
        fleet_keys,
        partner,
        gateway_endpoints,
        oauth_endpoints,
        oauth_authorize,
        account_pages,
        app_pages,
        admin_pages,
        console_pages,
        outbox_pages,
        billing_endpoints,
        billing_pages,
        usage_pages,
    ):
        # The routes themselves, not include_router(): this FastAPI wraps each included
        # router in a lazy matcher that costs ~10 % of a request's CPU under load.
        app.router.routes.extend(module.router.routes)
    declare_limited_responses(app.router.routes)
    declare_billing_headers(app.router.routes)
    declare_validation_errors(app)
    static = Path(__file__).parent / "portal" / "static"
    app.mount(f"{PORTAL}/static", StaticFiles(directory=static), name="portal-static")
    return app
