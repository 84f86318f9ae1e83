"""What every portal page shares: the signed-in account, CSRF, rendering and redirects.

Handlers open their own unit of work (`async with runtime.sessions() as db, db.begin()`),
resolve the caller with `signed_in(request, db)`, and answer with `render` or `redirect`.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, Request
from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy import inspect
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstanceState
from starlette.datastructures import FormData
from starlette.responses import HTMLResponse, RedirectResponse, Response

from flotta.accounts.models import User, WebSession
from flotta.accounts.sessions import STAGE_MFA, SessionService, SignedIn
from flotta.ratelimit.limiter import SIGN_IN
from flotta.runtime import Runtime

SESSION_COOKIE = "flotta_session"
CSRF_COOKIE = "flotta_csrf"
CSRF_FIELD = "csrf_token"
PORTAL = "/portal"
MAX_FORM_BYTES = 65_536
PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "frame-ancestors 'none'",
}

_TEMPLATES = Path(__file__).parent / "templates"
templates = Environment(
    loader=FileSystemLoader(_TEMPLATES),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)


class PortalRedirect(Exception):
    """Stop handling and send the browser elsewhere (303)."""

    def __init__(self, location: str) -> None:
        super().__init__(location)
        self.location = location


class PortalForbidden(Exception):
    """A refused form or page (bad CSRF token, not an admin): a 403 page with the reason."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def runtime_of(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def session_service(db: AsyncSession, runtime: Runtime) -> SessionService:
    return SessionService(
        db,
        secret_key=runtime.settings.secret_key,
        clock=runtime.clock,
        ttl_s=runtime.settings.portal.session_ttl_s,
    )


async def signed_in(request: Request, db: AsyncSession) -> SignedIn | None:
    """The caller's session (complete or awaiting MFA), or None."""
    found = await session_service(db, runtime_of(request)).resolve(
        request.cookies.get(SESSION_COOKIE)
    )
    request.state.signed_in = found
    return found


async def require_account(request: Request, db: AsyncSession) -> SignedIn:
    """A fully signed-in caller; others are sent to the login page and back here after."""
    found = await signed_in(request, db)
    if found is None or not found.complete:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        step = "login/mfa" if found is not None and found.session.stage == STAGE_MFA else "login"
        raise PortalRedirect(f"{PORTAL}/{step}?next={quote(target, safe='')}")
    return found


async def require_admin(request: Request, db: AsyncSession) -> SignedIn:
    found = await require_account(request, db)
    if not found.user.is_admin:
        raise PortalForbidden("This page is for operators. Ask an admin to promote your account.")
    return found


def safe_next(value: str | None, default: str = f"{PORTAL}/") -> str:
    """Only same-site paths: an open redirect would let a link bounce users to any site."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return default
    return value


def _csrf_key(request: Request) -> str:
    found: SignedIn | None = getattr(request.state, "signed_in", None)
    if found is not None:
        return found.session.csrf_secret
    cookie = request.cookies.get(CSRF_COOKIE) or getattr(request.state, "new_csrf_cookie", None)
    if not cookie:
        cookie = secrets.token_hex(32)
        request.state.new_csrf_cookie = cookie
    return cookie


def csrf_token(request: Request) -> str:
    """The synchronizer token for forms on this page: keyed to the session, or to a
    pre-session cookie on the sign-up and login pages (double submit)."""
    key = _csrf_key(request)
    return hmac.new(key.encode(), b"flotta-csrf", hashlib.sha256).hexdigest()


async def read_form(request: Request) -> FormData:
    """The posted form after its CSRF token is checked; oversized bodies are refused."""
    if int(request.headers.get("content-length") or 0) > MAX_FORM_BYTES:
        raise PortalForbidden("The form is too large.")
    form = await request.form(max_files=0, max_fields=200)
    sent = form.get(CSRF_FIELD)
    if not isinstance(sent, str) or not hmac.compare_digest(sent, csrf_token(request)):
        raise PortalForbidden(
            "The form expired or came from another site. Go back, reload the page and try again."
        )
    return form


def cookie_secure(runtime: Runtime) -> bool:
    setting = runtime.settings.portal.cookie_secure
    if setting is not None:
        return setting
    return runtime.settings.public_base_url.startswith("https://")


def render(
    request: Request, template: str, context: Mapping[str, Any] | None = None, status: int = 200
) -> HTMLResponse:
    """Render a page with what the layout needs (who is signed in, CSRF, demo mode)."""
    runtime = runtime_of(request)
    found: SignedIn | None = getattr(request.state, "signed_in", None)
    page = templates.get_template(template).render(
        request=request,
        user=found.user if found is not None and found.complete else None,
        csrf_token=csrf_token(request),
        csrf_field=CSRF_FIELD,
        demo=runtime.settings.demo,
        portal=PORTAL,
        **(context or {}),
    )
    # Every page is someone's own (and some show one-time secrets): never cached, never
    # framed by another site, and no Referer carrying a token in its URL onwards.
    response = HTMLResponse(page, status_code=status, headers=PAGE_HEADERS)
    new_cookie = getattr(request.state, "new_csrf_cookie", None)
    if new_cookie:
        response.set_cookie(
            CSRF_COOKIE,
            new_cookie,
            httponly=True,
            samesite="strict",
            secure=cookie_secure(runtime),
            path="/",
        )
    return response


def redirect(location: str) -> RedirectResponse:
    """303 See Other; like pages, never cached (it may carry an authorization code)."""
    return RedirectResponse(location, status_code=303, headers=PAGE_HEADERS)


def set_session_cookie(response: Response, runtime: Runtime, token: str) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=runtime.settings.portal.session_ttl_s,
        httponly=True,
        samesite="lax",
        secure=cookie_secure(runtime),
        path="/",
    )


def clear_session_cookie(response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/")


def _unreadable(row: WebSession | User) -> bool:
    state: InstanceState[WebSession | User] = inspect(row)
    return bool(state.detached and state.unloaded)


class PortalThrottled(Exception):
    """Too many account-form posts from one address: answered 429 with Retry-After."""

    def __init__(self, retry_after_s: int) -> None:
        super().__init__(f"retry in {retry_after_s} s")
        self.retry_after_s = retry_after_s


async def throttle_account_form(request: Request) -> None:
    """Count a sign-in, second-factor, reset or sign-up post against its client address
    (`ratelimit.sign_in`); raise PortalThrottled past the limit. Call it before any work."""
    limiter = runtime_of(request).limiter
    if limiter is None:
        return
    address = request.client.host if request.client is not None else "unknown"
    refusal = await limiter.hit(SIGN_IN, address)
    if refusal is not None:
        raise PortalThrottled(refusal.reset_s)


def install_portal_handlers(app: FastAPI) -> None:
    """Portal failures are pages and redirects, not Fleet API JSON envelopes."""

    async def on_redirect(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, PortalRedirect)
        return redirect(exc.location)

    async def on_forbidden(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, PortalForbidden)
        found: SignedIn | None = getattr(request.state, "signed_in", None)
        if found is not None and (_unreadable(found.session) or _unreadable(found.user)):
            # Raised inside the handler's transaction: its rollback expired the rows and the db
            # session is closed, so the page cannot read them. Show the refusal anonymously.
            request.state.signed_in = None
        return render(request, "forbidden.html", {"reason": exc.reason}, status=403)

    async def on_throttled(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, PortalThrottled)
        context = {"retry_after_s": exc.retry_after_s}
        page = render(request, "too_many_attempts.html", context, status=429)
        page.headers["Retry-After"] = str(exc.retry_after_s)
        return page

    app.add_exception_handler(PortalRedirect, on_redirect)
    app.add_exception_handler(PortalForbidden, on_forbidden)
    app.add_exception_handler(PortalThrottled, on_throttled)
