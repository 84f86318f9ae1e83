"""Helpers of the apps tests: accounts and sessions made on the server's loop, portal forms."""

from __future__ import annotations

import re
import uuid
from typing import Any

import httpx
from sqlalchemy import select

from flotta.accounts.models import User
from flotta.accounts.sessions import STAGE_FULL, SessionService
from flotta.apps.repository import AppRepository
from flotta.apps.schemas import ApplicationInput
from flotta.apps.service import ApplicationService
from flotta.mail.models import OutboxMessage
from flotta.oauth.models import OAuthClient
from flotta.portal.web import SESSION_COOKIE
from tests.live import LiveDemo

_CSRF = re.compile(r'name="csrf_token" value="([0-9a-f]{64})"')

GOOD_FORM: dict[str, Any] = {
    "name": "Charge Planner",
    "description": "Plans charging around tariffs.",
    "intended_use": "Reads charge state hourly and starts charging when power is cheap.",
    "website": "https://planner.example.com",
    "domain": "api.example.com",
    "redirect_uris": "https://planner.example.com/callback\nhttp://localhost:8080/cb",
    "allowed_origins": "https://planner.example.com",
    "scopes": ["openid", "offline_access", "vehicle_device_data", "vehicle_charging_cmds"],
    "client_type": "confidential",
}


def new_email(prefix: str = "dev") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}@example.com"


def make_user(
    live: LiveDemo, email: str, *, verified: bool = True, mfa: bool = True, admin: bool = False
) -> int:
    """Insert an account directly (sign-up is another helper's page)."""
    runtime = live.handle.runtime

    async def insert() -> int:
        now = runtime.clock.now()
        async with runtime.sessions() as db, db.begin():
            user = User(
                email=email,
                full_name="Test Developer",
                created_at=now,
                email_verified_at=now if verified else None,
                totp_secret="JBSWY3DPEHPK3PXP" if mfa else None,
                totp_enabled_at=now if mfa else None,
                is_admin=admin,
            )
            db.add(user)
            await db.flush()
            return user.id

    return live.call(insert())


def session_cookie(live: LiveDemo, email: str) -> str:
    """A full (post-MFA) portal session for the account."""
    runtime = live.handle.runtime

    async def start() -> str:
        async with runtime.sessions() as db, db.begin():
            user = (await db.execute(select(User).where(User.email == email))).scalar_one()
            service = SessionService(
                db,
                secret_key=runtime.settings.secret_key,
                clock=runtime.clock,
                ttl_s=runtime.settings.portal.session_ttl_s,
            )
            return await service.start(user, STAGE_FULL)

    return live.call(start())


def browser(live: LiveDemo, email: str | None = None) -> httpx.Client:
    """An HTTP client with the account's session cookie (real cookies, real HTTP)."""
    client = httpx.Client(base_url=live.base_url, timeout=15, follow_redirects=False)
    if email is not None:
        client.cookies.set(SESSION_COOKIE, session_cookie(live, email))
    return client


def developer(live: LiveDemo, **flags: bool) -> tuple[str, httpx.Client]:
    email = new_email()
    make_user(live, email, **flags)
    return email, browser(live, email)


def csrf_of(html: str) -> str:
    found = _CSRF.search(html)
    assert found is not None, "no CSRF token on the page"
    return found.group(1)


def post_form(client: httpx.Client, page: str, action: str, data: dict[str, Any]) -> httpx.Response:
    """Load `page` for its CSRF token, then post `data` to `action` as the browser would."""
    loaded = client.get(page)
    assert loaded.status_code in (200, 400, 403, 409), loaded.text
    return client.post(action, data={**data, "csrf_token": csrf_of(loaded.text)})


def submit(client: httpx.Client, **changes: Any) -> httpx.Response:
    return post_form(client, "/portal/apps/new", "/portal/apps/new", {**GOOD_FORM, **changes})


def client_id_of(response: httpx.Response) -> str:
    assert response.status_code == 303, response.text
    location = response.headers["location"]
    match = re.match(r"^/portal/apps/([0-9a-f]{32})\?notice=submitted$", location)
    assert match is not None, location
    return match.group(1)


def application(live: LiveDemo, client_id: str) -> OAuthClient:
    runtime = live.handle.runtime

    async def load() -> OAuthClient:
        async with runtime.sessions() as db:
            app = await AppRepository(db).by_client_id(client_id)
            assert app is not None
            return app

    return live.call(load())


def outbox(live: LiveDemo, to: str) -> list[OutboxMessage]:
    runtime = live.handle.runtime

    async def load() -> list[OutboxMessage]:
        async with runtime.sessions() as db:
            query = select(OutboxMessage).where(OutboxMessage.to_address == to)
            return list((await db.execute(query.order_by(OutboxMessage.id))).scalars())

    return live.call(load())


def approved_app(live: LiveDemo, owner_email: str, **changes: Any) -> OAuthClient:
    """Submit and approve an application directly through the service (no pages)."""
    runtime = live.handle.runtime
    fields = {**GOOD_FORM, **changes}
    data = ApplicationInput(**{**fields, "scopes": tuple(fields["scopes"])})

    async def create() -> OAuthClient:
        async with runtime.sessions() as db, db.begin():
            owner = await AppRepository(db).user_by_email(owner_email)
            assert owner is not None
            service = ApplicationService(
                db,
                secret_key=runtime.settings.secret_key,
                clock=runtime.clock,
                base_url=runtime.settings.public_base_url,
            )
            app = await service.submit(owner, data)
            return await service.approve(app.client_id)

    return live.call(create())


def issue_secret(live: LiveDemo, client_id: str) -> str:
    runtime = live.handle.runtime

    async def issue() -> str:
        async with runtime.sessions() as db, db.begin():
            service = ApplicationService(
                db,
                secret_key=runtime.settings.secret_key,
                clock=runtime.clock,
                base_url=runtime.settings.public_base_url,
            )
            return await service.issue_secret(await service.get(client_id))

    return live.call(issue())
