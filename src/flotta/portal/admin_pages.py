"""Operator pages: review applications (approve, or reject with a reason)."""

from __future__ import annotations

from collections.abc import Mapping

from fastapi import APIRouter, Request
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response

from flotta.apps.errors import AlreadyReviewed, AppNotFound, ChangedSinceReview, ReasonRequired
from flotta.apps.public_key import fingerprint
from flotta.apps.repository import STATUSES, AppRepository
from flotta.apps.service import review_version
from flotta.portal.app_pages import app_service
from flotta.portal.web import PORTAL, read_form, redirect, render, require_admin, runtime_of

router = APIRouter(include_in_schema=False)

ADMIN_APPS = f"{PORTAL}/admin/apps"


@router.get(ADMIN_APPS)
async def review_queue(request: Request) -> Response:
    """Pending applications first (oldest first), then the decided ones."""
    runtime = runtime_of(request)
    wanted = request.query_params.get("status")
    status = wanted if wanted in STATUSES else None
    async with runtime.sessions() as db, db.begin():
        await require_admin(request, db)
        rows = await AppRepository(db).for_review(status)
        reviewed_id = request.query_params.get("reviewed")
        reviewed = await AppRepository(db).by_client_id(reviewed_id) if reviewed_id else None
    notice = None
    if reviewed is not None and reviewed.status != "pending":
        notice = f"{reviewed.name} was {reviewed.status}; the developer was e-mailed."
    context = {"rows": rows, "status": status, "statuses": STATUSES, "notice": notice}
    return render(request, "admin_apps.html", context)


def _not_found(request: Request) -> Response:
    return render(request, "app_not_found.html", {"reason": "No such application."}, 404)


async def _show(
    request: Request, db: AsyncSession, client_id: str, status: int = 200, **extra: object
) -> Response:
    """The application's review page (all fields, and the decision forms while pending)."""
    repo = AppRepository(db)
    app = await repo.by_client_id(client_id)
    if app is None:
        return _not_found(request)
    owner = await repo.owner(app)
    key_print = fingerprint(app.public_key) if app.public_key else None
    context = {
        "app": app,
        "owner": owner,
        "fingerprint": key_print,
        "version": review_version(app),
        "errors": {},
        **extra,
    }
    return render(request, "admin_app.html", context, status=status)


@router.get(ADMIN_APPS + "/{client_id}")
async def review_app(request: Request, client_id: str) -> Response:
    runtime = runtime_of(request)
    async with runtime.sessions() as db, db.begin():
        await require_admin(request, db)
        return await _show(request, db, client_id)


@router.post(ADMIN_APPS + "/{client_id}/approve")
async def approve_app(request: Request, client_id: str) -> Response:
    """Approve and e-mail the developer (in the same transaction as the decision)."""
    runtime = runtime_of(request)
    async with runtime.sessions() as db, db.begin():
        await require_admin(request, db)
        form = await read_form(request)
        note = form.get("note")
        typed = note if isinstance(note, str) else ""
        try:
            await app_service(db, runtime).approve(client_id, typed, _reviewed(form))
        except AppNotFound:
            return _not_found(request)
        except (AlreadyReviewed, ChangedSinceReview) as refused:
            return await _show(request, db, client_id, 409, error=refused.message, note=typed)
    runtime.mail.wake()  # committed: deliver the developer's e-mail now
    return redirect(f"{ADMIN_APPS}?reviewed={client_id}")


@router.post(ADMIN_APPS + "/{client_id}/reject")
async def reject_app(request: Request, client_id: str) -> Response:
    """Reject with a required reason, which the developer receives by e-mail and sees."""
    runtime = runtime_of(request)
    async with runtime.sessions() as db, db.begin():
        await require_admin(request, db)
        form = await read_form(request)
        reason = form.get("reason")
        typed = reason if isinstance(reason, str) else ""
        try:
            await app_service(db, runtime).reject(client_id, typed, _reviewed(form))
        except AppNotFound:
            return _not_found(request)
        except ReasonRequired as missing:
            errors = {"reason": missing.message}
            return await _show(request, db, client_id, 400, errors=errors, reason=typed)
        except (AlreadyReviewed, ChangedSinceReview) as refused:
            return await _show(request, db, client_id, 409, error=refused.message, reason=typed)
    runtime.mail.wake()  # committed: deliver the developer's e-mail now
    return redirect(f"{ADMIN_APPS}?reviewed={client_id}")


def _reviewed(form: Mapping[str, object]) -> str | None:
    """The application version the decision's page showed (absent: a form without it)."""
    version = form.get("version")
    return version if isinstance(version, str) and version else None
