"""Developer pages: the dashboard, applying for an app, its credentials and public key."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import APIRouter, Request
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import FormData
from starlette.responses import Response

from flotta.accounts.models import User
from flotta.apps.errors import (
    AppNotFound,
    InvalidApplication,
    NotApproved,
    NotEditable,
    NotEligible,
)
from flotta.apps.public_key import InvalidPublicKey, fingerprint
from flotta.apps.repository import APPROVED, PENDING, REJECTED, AppRepository
from flotta.apps.schemas import ApplicationInput
from flotta.apps.service import (
    REJECTED_IS_FINAL,
    ApplicationService,
    editable,
    missing_steps,
)
from flotta.auth.scopes import OWNER_SCOPES
from flotta.oauth.models import OAuthClient
from flotta.portal.web import (
    PORTAL,
    read_form,
    redirect,
    render,
    require_account,
    runtime_of,
    signed_in,
)
from flotta.runtime import Runtime

router = APIRouter(include_in_schema=False)

NOTICES = {
    "submitted": "Application submitted. An operator will review it; we will e-mail you.",
    "key": "Public key saved.",
    "updated": "Application details saved.",
}


@dataclass(frozen=True, slots=True)
class NextStep:
    text: str
    url: str
    label: str


def app_service(db: AsyncSession, runtime: Runtime) -> ApplicationService:
    return ApplicationService(
        db,
        secret_key=runtime.settings.secret_key,
        clock=runtime.clock,
        base_url=runtime.settings.public_base_url,
    )


def next_step(user: User, apps: list[OAuthClient]) -> NextStep:
    """The one thing the developer should do now."""
    if user.email_verified_at is None:
        return NextStep(
            "Verify your e-mail address: open the link we sent you.",
            f"{PORTAL}/account",
            "Account and e-mail verification",
        )
    if user.totp_enabled_at is None:
        return NextStep(
            "Turn on two-factor authentication: applying for an app needs it.",
            f"{PORTAL}/account/mfa",
            "Set up two-factor authentication",
        )
    if not apps:
        return NextStep(
            "Apply for your first application.", f"{PORTAL}/apps/new", "New application"
        )
    return _app_step(apps)


def _app_step(apps: list[OAuthClient]) -> NextStep:
    def page(app: OAuthClient) -> str:
        return f"{PORTAL}/apps/{app.client_id}"

    for app in apps:
        if app.status == APPROVED and app.client_type == "confidential" and not app.secret_hash:
            return NextStep(
                f"{app.name} is approved: generate its client secret.", page(app), app.name
            )
    for app in apps:
        if app.status == APPROVED and app.partner_registered_at is None:
            return NextStep(
                f"Register {app.name}'s domain: host or upload its public key, then call "
                "POST /api/1/partner_accounts with a partner token.",
                page(app),
                app.name,
            )
    for app in apps:
        if app.status == PENDING:
            return NextStep(
                f"{app.name} is waiting for review; we will e-mail you the decision.",
                page(app),
                app.name,
            )
    if all(app.status == REJECTED for app in apps):
        return NextStep(
            f"{apps[0].name} was not approved: read why, then apply again.",
            page(apps[0]),
            apps[0].name,
        )
    return NextStep(
        "You are all set: send owners to /oauth2/v3/authorize to connect their vehicles.",
        f"{PORTAL}/apps",
        "Your applications",
    )


@router.get(f"{PORTAL}/")
async def dashboard(request: Request) -> Response:
    """Signed in: account status, applications and the next step. Otherwise a landing page."""
    runtime = runtime_of(request)
    async with runtime.sessions() as db, db.begin():
        found = await signed_in(request, db)
        if found is None or not found.complete:
            return render(request, "dashboard.html", {"mfa_pending": found is not None})
        apps = await AppRepository(db).of_owner(found.user.id)
    context = {"account": found.user, "apps": apps, "step": next_step(found.user, apps)}
    return render(request, "dashboard.html", context)


@router.get(f"{PORTAL}/apps")
async def list_apps(request: Request) -> Response:
    runtime = runtime_of(request)
    async with runtime.sessions() as db, db.begin():
        found = await require_account(request, db)
        apps = await AppRepository(db).of_owner(found.user.id)
    context = {"apps": apps, "missing": missing_steps(found.user)}
    return render(request, "apps.html", context)


def _form_context(user: User, form: ApplicationInput, errors: dict[str, str]) -> dict[str, object]:
    return {
        "form": form,
        "errors": errors,
        "missing": missing_steps(user),
        "all_scopes": OWNER_SCOPES,
    }


@router.get(f"{PORTAL}/apps/new")
async def new_app(request: Request) -> Response:
    runtime = runtime_of(request)
    async with runtime.sessions() as db, db.begin():
        found = await require_account(request, db)
    context = _form_context(found.user, ApplicationInput(scopes=tuple(OWNER_SCOPES)), {})
    status = 403 if context["missing"] else 200
    return render(request, "app_form.html", context, status=status)


def _application_input(form: FormData) -> ApplicationInput:
    def text(name: str) -> str:
        value = form.get(name)
        return value if isinstance(value, str) else ""

    return ApplicationInput(
        name=text("name"),
        description=text("description"),
        intended_use=text("intended_use"),
        website=text("website"),
        domain=text("domain"),
        redirect_uris=text("redirect_uris"),
        allowed_origins=text("allowed_origins"),
        scopes=tuple(s for s in form.getlist("scopes") if isinstance(s, str)),
        client_type=text("client_type"),
    )


@router.post(f"{PORTAL}/apps/new")
async def submit_app(request: Request) -> Response:
    """Create a pending application, or show the form again with every problem named."""
    runtime = runtime_of(request)
    async with runtime.sessions() as db, db.begin():
        found = await require_account(request, db)
        data = _application_input(await read_form(request))
        try:
            app = await app_service(db, runtime).submit(found.user, data)
        except NotEligible:
            return render(request, "app_form.html", _form_context(found.user, data, {}), 403)
        except InvalidApplication as invalid:
            context = _form_context(found.user, data, invalid.errors)
            return render(request, "app_form.html", context, status=400)
    return redirect(f"{PORTAL}/apps/{app.client_id}?notice=submitted")


def _detail_context(app: OAuthClient, **extra: object) -> dict[str, object]:
    key_print = fingerprint(app.public_key) if app.public_key else None
    return {"app": app, "fingerprint": key_print, "key_errors": {}, **extra}


def _not_found(request: Request, message: str) -> Response:
    return render(request, "app_not_found.html", {"reason": message}, status=404)


@router.get(PORTAL + "/apps/{client_id}")
async def app_detail(request: Request, client_id: str) -> Response:
    runtime = runtime_of(request)
    async with runtime.sessions() as db, db.begin():
        found = await require_account(request, db)
        try:
            app = await app_service(db, runtime).owned(found.user, client_id)
        except AppNotFound as missing:
            return _not_found(request, missing.message)
    notice = NOTICES.get(request.query_params.get("notice", ""))
    return render(request, "app_detail.html", _detail_context(app, notice=notice))


def _edit_context(
    app: OAuthClient, data: ApplicationInput, errors: dict[str, str]
) -> dict[str, object]:
    return {
        "form": data,
        "errors": errors,
        "missing": [],
        "all_scopes": OWNER_SCOPES,
        "app": app,
        "editable": editable(app),
    }


@router.get(PORTAL + "/apps/{client_id}/edit")
async def edit_app_form(request: Request, client_id: str) -> Response:
    runtime = runtime_of(request)
    async with runtime.sessions() as db, db.begin():
        found = await require_account(request, db)
        service = app_service(db, runtime)
        try:
            app = await service.owned(found.user, client_id)
        except AppNotFound as missing:
            return _not_found(request, missing.message)
    context = _edit_context(app, service.as_input(app), {})
    if app.status == REJECTED:
        context["refused"] = REJECTED_IS_FINAL
        return render(request, "app_form.html", context, status=409)
    return render(request, "app_form.html", context)


@router.post(PORTAL + "/apps/{client_id}/edit")
async def edit_app(request: Request, client_id: str) -> Response:
    """Save the editable details, or show the form again with every problem named."""
    runtime = runtime_of(request)
    async with runtime.sessions() as db, db.begin():
        found = await require_account(request, db)
        data = _application_input(await read_form(request))
        service = app_service(db, runtime)
        try:
            app = await service.edit(found.user, client_id, data)
        except AppNotFound as missing:
            return _not_found(request, missing.message)
        except NotEditable as refused:
            app = await service.owned(found.user, client_id)
            context = {**_edit_context(app, data, {}), "refused": refused.message}
            return render(request, "app_form.html", context, status=409)
        except InvalidApplication as invalid:
            app = await service.owned(found.user, client_id)
            context = _edit_context(app, service.edited(app, data), invalid.errors)
            return render(request, "app_form.html", context, status=400)
    # No cache to drop: /authorize and the token endpoint read the app's row on every request,
    # and the directory's app records hold none of the fields an edit changes.
    return redirect(f"{PORTAL}/apps/{client_id}?notice=updated")


@router.post(PORTAL + "/apps/{client_id}/secret")
async def generate_secret(request: Request, client_id: str) -> Response:
    """Create or rotate the client secret and show it this once (only its HMAC is kept)."""
    runtime = runtime_of(request)
    async with runtime.sessions() as db, db.begin():
        found = await require_account(request, db)
        await read_form(request)
        service = app_service(db, runtime)
        try:
            app = await service.owned(found.user, client_id)
            rotated = app.secret_hash is not None
            secret = await service.issue_secret(app)
        except AppNotFound as missing:
            return _not_found(request, missing.message)
        except NotApproved as refused:
            return render(
                request, "app_detail.html", _detail_context(app, error=refused.message), 409
            )
    base_url = runtime.settings.public_base_url
    context = {"app": app, "secret": secret, "rotated": rotated, "base_url": base_url}
    return render(request, "credentials.html", context)


@router.post(PORTAL + "/apps/{client_id}/public_key")
async def upload_public_key(request: Request, client_id: str) -> Response:
    runtime = runtime_of(request)
    async with runtime.sessions() as db, db.begin():
        found = await require_account(request, db)
        form = await read_form(request)
        service = app_service(db, runtime)
        try:
            app = await service.owned(found.user, client_id)
        except AppNotFound as missing:
            return _not_found(request, missing.message)
        pem = form.get("public_key")
        try:
            await service.set_public_key(app, pem if isinstance(pem, str) else "")
        except InvalidPublicKey as invalid:
            context = _detail_context(app, key_errors={"public_key": str(invalid)}, pem=pem)
            return render(request, "app_detail.html", context, status=400)
    return redirect(f"{PORTAL}/apps/{app.client_id}?notice=key")
