"""The owner console (`/portal/console`): which apps reach the account, narrow or revoke them.

Changes apply to the app's next request: the handler commits, then `directory.forget()` drops
the cached grant. A grant of another account is answered like a missing one (404).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import FormData
from starlette.responses import Response

from flotta.oauth.consent import ConsentService
from flotta.oauth.devices import granted_devices
from flotta.oauth.models import ConsentGrant, OAuthClient, as_list
from flotta.oauth.repository import OAuthRepository
from flotta.oauth.scopes import MANDATORY_SCOPES, scope_words
from flotta.portal.web import PORTAL, read_form, redirect, render, require_account, runtime_of
from flotta.runtime import Runtime
from flotta.telemetry.consent import prune_for_grant

router = APIRouter(include_in_schema=False)

CONSOLE = f"{PORTAL}/console"
NOTICES = {
    "narrowed": "Saved. The app keeps only what is still ticked, from its next request on.",
    "revoked": "Access revoked. The app can no longer reach your account or your vehicles.",
}


def _when(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC")


async def _item(
    db: AsyncSession, runtime: Runtime, grant: ConsentGrant, app: OAuthClient
) -> dict[str, Any]:
    scopes = [
        {"words": scope_words(s), "fixed": s in MANDATORY_SCOPES} for s in as_list(grant.scopes)
    ]
    return {
        "id": grant.id,
        "app": app,
        "since": _when(grant.created_at),
        "updated": _when(grant.updated_at),
        "changed": grant.updated_at != grant.created_at,
        "scopes": scopes,
        "devices": await granted_devices(db, runtime, as_list(grant.devices)),
    }


@router.get(CONSOLE)
async def console(request: Request) -> Response:
    """Every app with access to the signed-in account."""
    runtime = runtime_of(request)
    async with runtime.sessions() as db, db.begin():
        found = await require_account(request, db)
        rows = await OAuthRepository(db).grants_with_apps(found.user.id)
        items = [await _item(db, runtime, grant, app) for grant, app in rows]
    notice = NOTICES.get(request.query_params.get("done", ""))
    return render(request, "console.html", {"grants": items, "notice": notice})


def _missing(request: Request) -> Response:
    context = {
        "heading": "No such app access",
        "message": "This access does not exist or was already revoked.",
        "back": CONSOLE,
    }
    return render(request, "authorize_error.html", context, status=404)


def _chosen(form: FormData, name: str) -> set[str]:
    return {v for v in form.getlist(name) if isinstance(v, str)}


@router.post(CONSOLE + "/{grant_id}")
async def narrow(request: Request, grant_id: str) -> Response:
    """Keep only the ticked scopes and vehicles (sign-in scopes stay until revoked)."""
    runtime = runtime_of(request)
    async with runtime.sessions() as db, db.begin():
        found = await require_account(request, db)
        form = await read_form(request)
        grant = await _own_grant(db, grant_id, found.user.id)
        if grant is None:
            return _missing(request)
        fixed = MANDATORY_SCOPES & set(as_list(grant.scopes))
        await ConsentService(db, runtime.clock).narrow(
            grant, _chosen(form, "scope") | fixed, _chosen(form, "device")
        )
        removed = await prune_for_grant(db, grant)  # streams outside the grant stop (issue 5)
    runtime.directory.forget()
    if runtime.telemetry is not None:
        await runtime.telemetry.push_removed(removed)
    return redirect(f"{CONSOLE}?done=narrowed")


@router.post(CONSOLE + "/{grant_id}/revoke")
async def revoke(request: Request, grant_id: str) -> Response:
    """End the app's access to the account and its refresh tokens."""
    runtime = runtime_of(request)
    async with runtime.sessions() as db, db.begin():
        found = await require_account(request, db)
        await read_form(request)
        grant = await _own_grant(db, grant_id, found.user.id)
        if grant is None:
            return _missing(request)
        await ConsentService(db, runtime.clock).revoke(grant)
        removed = await prune_for_grant(db, grant)
    runtime.directory.forget()
    if runtime.telemetry is not None:
        await runtime.telemetry.push_removed(removed)
    return redirect(f"{CONSOLE}?done=revoked")


async def _own_grant(db: AsyncSession, grant_id: str, user_id: int) -> ConsentGrant | None:
    if not grant_id.isdigit() or len(grant_id) > 18:
        return None
    return await OAuthRepository(db).grant_of_user(int(grant_id), user_id)
