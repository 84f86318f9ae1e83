"""Account pages: sign-up, e-mail confirmation, the account overview and two-step sign-in."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from sqlalchemy.exc import IntegrityError
from starlette.responses import Response

from flotta.accounts.errors import AccountRefused
from flotta.accounts.mfa import MfaService
from flotta.accounts.passwords import MAX_LENGTH, MIN_LENGTH
from flotta.accounts.service import normalize_email
from flotta.accounts.sessions import STAGE_FULL, SignedIn
from flotta.portal import login_pages
from flotta.portal.login_pages import account_service, notice_for, text
from flotta.portal.web import (
    PORTAL,
    SESSION_COOKIE,
    clear_session_cookie,
    read_form,
    redirect,
    render,
    require_account,
    runtime_of,
    session_service,
    set_session_cookie,
    signed_in,
    throttle_account_form,
)
from flotta.runtime import Runtime

router = APIRouter(include_in_schema=False)
# One module registered in app.py serves every account page.
router.routes.extend(login_pages.router.routes)

PASSWORD_RULE = f"At least {MIN_LENGTH} characters (at most {MAX_LENGTH})."


def mfa_service(request: Request, db: Any) -> MfaService:
    runtime = runtime_of(request)
    return MfaService(db, secret_key=runtime.settings.secret_key, clock=runtime.clock)


@router.get(f"{PORTAL}/signup")
async def signup_page(request: Request) -> Response:
    async with runtime_of(request).sessions() as db:
        found = await signed_in(request, db)
    if found is not None and found.complete:
        return redirect(f"{PORTAL}/account")
    context = {"values": {}, "errors": {}, "password_rule": PASSWORD_RULE}
    return render(request, "signup.html", context)


@router.post(f"{PORTAL}/signup")
async def signup(request: Request) -> Response:
    await throttle_account_form(request)
    runtime = runtime_of(request)
    cookie: str | None = None
    try:
        async with runtime.sessions() as db, db.begin():
            await signed_in(request, db)
            form = await read_form(request)
            values = {"email": text(form, "email", 400), "full_name": text(form, "full_name")}
            try:
                user = await account_service(db, runtime).sign_up(
                    values["email"], values["full_name"], text(form, "password", 10_000)
                )
            except AccountRefused as refused:
                errors = {refused.field or "form": refused.message}
                context = {"values": values, "errors": errors, "password_rule": PASSWORD_RULE}
                return render(request, "signup.html", context, status=400)
            if user is not None:
                sessions = session_service(db, runtime)
                await sessions.end(request.cookies.get(SESSION_COOKIE))
                cookie = await sessions.start(user, STAGE_FULL)
    except IntegrityError:
        # Another sign-up took the address between our check and our insert.
        await _note_taken(runtime, normalize_email(values["email"]))
    runtime.mail.wake()
    response = redirect(f"{PORTAL}/signup/sent")
    if cookie is not None:
        set_session_cookie(response, runtime, cookie)
    return response


async def _note_taken(runtime: Runtime, address: str) -> None:
    async with runtime.sessions() as db, db.begin():
        await account_service(db, runtime).note_taken(address)


@router.get(f"{PORTAL}/signup/sent")
async def signup_sent(request: Request) -> Response:
    async with runtime_of(request).sessions() as db:
        await signed_in(request, db)
    return render(request, "signup_sent.html")


@router.get(f"{PORTAL}/verify")
async def verify(request: Request) -> Response:
    runtime = runtime_of(request)
    async with runtime.sessions() as db, db.begin():
        found = await signed_in(request, db)
        token = request.query_params.get("token", "")
        state, user = await account_service(db, runtime).verify_email(token)
    context = {
        "state": state.value,
        "verified_email": user.email if user is not None else None,
        "can_resend": found is not None and found.complete,
    }
    page = render(request, "verify.html", context, status=200 if user is not None else 400)
    return page


@router.post(f"{PORTAL}/verify/resend")
async def verify_resend(request: Request) -> Response:
    runtime = runtime_of(request)
    async with runtime.sessions() as db, db.begin():
        found = await require_account(request, db)
        await read_form(request)
        try:
            await account_service(db, runtime).resend_verification(found.user)
        except AccountRefused as refused:
            context = await _account_context(request, db, found)
            return render(request, "account.html", {**context, "error": refused.message}, 400)
    runtime.mail.wake()
    return redirect(f"{PORTAL}/account?notice=verification_sent")


@router.get(f"{PORTAL}/account")
async def account(request: Request) -> Response:
    async with runtime_of(request).sessions() as db:
        found = await require_account(request, db)
        context = await _account_context(request, db, found)
    return render(request, "account.html", {**context, "notice": notice_for(request)})


async def _account_context(request: Request, db: Any, found: SignedIn) -> dict[str, Any]:
    user = found.user
    unused = await mfa_service(request, db).unused_codes(user) if user.totp_enabled_at else 0
    return {"account": user, "unused_codes": unused}


@router.get(f"{PORTAL}/account/password")
async def password_page(request: Request) -> Response:
    async with runtime_of(request).sessions() as db:
        await require_account(request, db)
    return render(request, "account_password.html")


@router.post(f"{PORTAL}/account/password")
async def change_password(request: Request) -> Response:
    """A new password, given the current one; then signed out everywhere, as after a reset."""
    runtime = runtime_of(request)
    async with runtime.sessions() as db, db.begin():
        found = await require_account(request, db)
        form = await read_form(request)
        password = text(form, "password", 10_000)
        error = None
        if password != text(form, "confirm", 10_000):
            error = "The two new passwords differ. Type the same new password twice."
        else:
            try:
                await account_service(db, runtime).change_password(
                    found.user, text(form, "current", 10_000), password
                )
            except AccountRefused as refused:
                error = refused.message
        if error is not None:
            return render(request, "account_password.html", {"error": error}, status=400)
    runtime.mail.wake()
    response = redirect(f"{PORTAL}/login?notice=password_changed")
    clear_session_cookie(response)
    return response


@router.get(f"{PORTAL}/account/mfa")
async def mfa_enrol_page(request: Request) -> Response:
    async with runtime_of(request).sessions() as db, db.begin():
        found = await require_account(request, db)
        context = await _enrol_context(request, db, found)
    return render(request, "mfa_enrol.html", context)


async def _enrol_context(request: Request, db: Any, found: SignedIn) -> dict[str, Any]:
    """The enrolment page: the QR code, or why it cannot be shown (unverified, already on)."""
    context: dict[str, Any] = {"account": found.user, "enrolment": None}
    if found.user.totp_enabled_at is not None:
        return context
    try:
        context["enrolment"] = await mfa_service(request, db).begin_enrolment(found.user)
    except AccountRefused as refused:
        context["blocked"] = refused.message
    return context


@router.post(f"{PORTAL}/account/mfa")
async def mfa_enrol(request: Request) -> Response:
    async with runtime_of(request).sessions() as db, db.begin():
        found = await require_account(request, db)
        form = await read_form(request)
        try:
            codes = await mfa_service(request, db).confirm(found.user, text(form, "code"))
        except AccountRefused as refused:
            context = await _enrol_context(request, db, found)
            page = render(request, "mfa_enrol.html", {**context, "error": refused.message}, 400)
            return page
    context = {"codes": codes, "first_time": True}
    return render(request, "recovery_codes.html", context)


@router.post(f"{PORTAL}/account/recovery-codes")
async def regenerate_codes(request: Request) -> Response:
    async with runtime_of(request).sessions() as db, db.begin():
        found = await require_account(request, db)
        form = await read_form(request)
        try:
            codes = await mfa_service(request, db).regenerate_codes(found.user, text(form, "code"))
        except AccountRefused as refused:
            context = await _enrol_context(request, db, found)
            page = render(request, "mfa_enrol.html", {**context, "error": refused.message}, 400)
            return page
    return render(request, "recovery_codes.html", {"codes": codes, "first_time": False})
