"""Sign-in pages: password, second factor, sign-out, forgotten password and reset."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import APIRouter, Request
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import FormData
from starlette.responses import Response

from flotta.accounts.errors import AccountRefused
from flotta.accounts.service import AccountService, LinkState, normalize_email
from flotta.accounts.sessions import STAGE_FULL, STAGE_MFA
from flotta.portal.web import (
    PORTAL,
    SESSION_COOKIE,
    clear_session_cookie,
    read_form,
    redirect,
    render,
    runtime_of,
    safe_next,
    session_service,
    set_session_cookie,
    signed_in,
    throttle_account_form,
)
from flotta.runtime import Runtime

router = APIRouter(include_in_schema=False)

# `prompt=login`: the login page shows its form even to a signed-in customer.
SIGN_IN_AGAIN = "sign_in_again"
# Messages a redirect may ask a page to show (by key, so no text is reflected from the URL).
NOTICES = {
    "signed_out": "You are signed out.",
    "password_changed": (
        "Your password was changed and you were signed out everywhere. "
        "Sign in with your new password."
    ),
    "verification_sent": "We sent you a new confirmation link. It works for 24 hours.",
    SIGN_IN_AGAIN: "The app asks you to sign in again to continue.",
}


def notice_for(request: Request) -> str | None:
    return NOTICES.get(request.query_params.get("notice", ""))


def account_service(db: AsyncSession, runtime: Runtime) -> AccountService:
    return AccountService(
        db,
        secret_key=runtime.settings.secret_key,
        clock=runtime.clock,
        portal_url=runtime.settings.public_base_url + PORTAL,
        sessions=session_service(db, runtime),
    )


def text(form: FormData, name: str, limit: int = 1000) -> str:
    """A posted text field ('' when absent); over-long values are cut, never trusted."""
    value = form.get(name)
    return value[:limit] if isinstance(value, str) else ""


@router.get(f"{PORTAL}/login")
async def login_page(request: Request) -> Response:
    next_url = safe_next(request.query_params.get("next"))
    async with runtime_of(request).sessions() as db:
        found = await signed_in(request, db)
    again = request.query_params.get("notice") == SIGN_IN_AGAIN
    if found is not None and found.complete and not again:
        return redirect(next_url)
    context = {"next": next_url, "email": "", "notice": notice_for(request)}
    return render(request, "login.html", context)


@router.post(f"{PORTAL}/login")
async def login(request: Request) -> Response:
    await throttle_account_form(request)
    runtime = runtime_of(request)
    async with runtime.sessions() as db, db.begin():
        await signed_in(request, db)
        form = await read_form(request)
        next_url = safe_next(text(form, "next", 2000))
        email = text(form, "email", 320)
        outcome = await account_service(db, runtime).sign_in(email, text(form, "password"))
        if outcome.user is None:
            context = {"next": next_url, "email": email, "error": outcome.error}
            return render(request, "login.html", context, status=400)
        sessions = session_service(db, runtime)
        # A fresh session on every sign-in: a cookie planted before it is worth nothing.
        await sessions.end(request.cookies.get(SESSION_COOKIE))
        stage = STAGE_MFA if outcome.needs_mfa else STAGE_FULL
        cookie = await sessions.start(outcome.user, stage)
    target = next_url
    if outcome.needs_mfa:
        target = f"{PORTAL}/login/mfa?next={quote(next_url, safe='')}"
    response = redirect(target)
    set_session_cookie(response, runtime, cookie)
    return response


@router.get(f"{PORTAL}/login/mfa")
async def mfa_page(request: Request) -> Response:
    next_url = safe_next(request.query_params.get("next"))
    async with runtime_of(request).sessions() as db:
        found = await signed_in(request, db)
    if found is None:
        return redirect(f"{PORTAL}/login?next={quote(next_url, safe='')}")
    if found.complete:
        return redirect(next_url)
    return render(request, "login_mfa.html", {"next": next_url})


@router.post(f"{PORTAL}/login/mfa")
async def mfa_step(request: Request) -> Response:
    await throttle_account_form(request)
    runtime = runtime_of(request)
    async with runtime.sessions() as db, db.begin():
        found = await signed_in(request, db)
        form = await read_form(request)
        next_url = safe_next(text(form, "next", 2000))
        if found is None or found.complete:
            return redirect(f"{PORTAL}/login?next={quote(next_url, safe='')}")
        outcome = await account_service(db, runtime).finish_mfa(found.user, text(form, "code"))
        if outcome.user is None:
            context = {"next": next_url, "error": outcome.error}
            return render(request, "login_mfa.html", context, status=400)
        cookie = await session_service(db, runtime).promote(request.cookies[SESSION_COOKIE])
    response = redirect(next_url)
    set_session_cookie(response, runtime, cookie)
    return response


@router.post(f"{PORTAL}/logout")
async def logout(request: Request) -> Response:
    runtime = runtime_of(request)
    async with runtime.sessions() as db, db.begin():
        await signed_in(request, db)
        await read_form(request)
        await session_service(db, runtime).end(request.cookies.get(SESSION_COOKIE))
    response = redirect(f"{PORTAL}/login?notice=signed_out")
    clear_session_cookie(response)
    return response


@router.get(f"{PORTAL}/forgot")
async def forgot_page(request: Request) -> Response:
    async with runtime_of(request).sessions() as db:
        await signed_in(request, db)
    return render(request, "forgot.html", {"email": ""})


@router.post(f"{PORTAL}/forgot")
async def forgot(request: Request) -> Response:
    await throttle_account_form(request)
    runtime = runtime_of(request)
    async with runtime.sessions() as db, db.begin():
        await signed_in(request, db)
        form = await read_form(request)
        email = text(form, "email", 320)
        try:
            normalize_email(email)
        except AccountRefused as refused:
            context = {"email": email, "error": refused.message}
            return render(request, "forgot.html", context, status=400)
        await account_service(db, runtime).request_reset(email)
    runtime.mail.wake()
    # The same answer whether or not the account exists.
    return render(request, "forgot.html", {"email": email, "sent": True})


@router.get(f"{PORTAL}/reset")
async def reset_page(request: Request) -> Response:
    token = request.query_params.get("token", "")
    async with runtime_of(request).sessions() as db:
        await signed_in(request, db)
        state = await account_service(db, runtime_of(request)).reset_link_state(token)
    valid = state is LinkState.VALID
    page = render(request, "reset.html", {"token": token, "valid": valid, "state": state.value})
    page.status_code = 200 if valid else 400
    return page


@router.post(f"{PORTAL}/reset")
async def reset(request: Request) -> Response:
    await throttle_account_form(request)
    runtime = runtime_of(request)
    async with runtime.sessions() as db, db.begin():
        await signed_in(request, db)
        form = await read_form(request)
        token = text(form, "token", 200)
        password = text(form, "password", 10_000)
        context = {"token": token, "valid": True}
        if password != text(form, "confirm", 10_000):
            context["error"] = "The two passwords differ. Type the same new password twice."
            return render(request, "reset.html", context, status=400)
        try:
            await account_service(db, runtime).reset_password(token, password)
        except AccountRefused as refused:
            context.update(error=refused.message, valid=refused.field == "password")
            return render(request, "reset.html", context, status=400)
    runtime.mail.wake()
    response = redirect(f"{PORTAL}/login?notice=password_changed")
    clear_session_cookie(response)
    return response
