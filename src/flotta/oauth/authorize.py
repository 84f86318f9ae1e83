"""`GET/POST /oauth2/v3/authorize`: sign-in, the consent page and the code redirect.

RFC 6749 §4.1.1-4.1.2 with PKCE (RFC 7636) and the RFC 9700 rules: exact redirect_uri match,
no redirect for an untrusted client or redirect_uri, S256 only, PKCE required of public apps,
a 303 after the consent form, and a page that cannot be framed (clickjacking, §4.16).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import FormData
from starlette.responses import HTMLResponse, Response

from flotta.accounts.models import User
from flotta.accounts.sessions import SignedIn
from flotta.oauth.authorize_request import (
    AUTHORIZE_PATH,
    LOGIN_AFTER,
    AuthorizeError,
    AuthorizeRefused,
    AuthorizeRequest,
    parse_authorize,
)
from flotta.oauth.codes import CodeRequest
from flotta.oauth.consent import (
    Choice,
    ConsentService,
    ordered,
)
from flotta.oauth.devices import owner_devices, reaches_sites, reaches_vehicles
from flotta.oauth.grants import code_service
from flotta.oauth.models import ConsentGrant, as_list
from flotta.oauth.repository import OAuthRepository
from flotta.oauth.scopes import MANDATORY_SCOPES, scope_words
from flotta.portal.login_pages import SIGN_IN_AGAIN
from flotta.portal.web import (
    PORTAL,
    PortalRedirect,
    read_form,
    redirect,
    render,
    require_account,
    runtime_of,
    signed_in,
)
from flotta.runtime import Runtime
from flotta.telemetry.consent import prune_for_grant, stop_streams
from flotta.telemetry.service import ConfigState

router = APIRouter()

CHOOSE = "The form was sent without a decision. Go back and choose Allow or Deny."


@dataclass(frozen=True, slots=True)
class Offer:
    """What the consent page offers: scopes to decide on, scopes kept, devices to choose."""

    shown: list[str]
    kept: list[str]
    devices: list[dict[str, Any]]


async def _refused(request: Request, db: AsyncSession, refused: AuthorizeRefused) -> Response:
    await signed_in(request, db)
    context = {"heading": "This app cannot continue", "message": refused.description}
    return render(request, "authorize_error.html", context, status=400)


@router.get(
    AUTHORIZE_PATH,
    tags=["oauth"],
    summary="Authorization request (RFC 6749 §4.1.1): sign-in, then the consent page",
    response_class=HTMLResponse,
    responses={
        303: {"description": "to the login page, or back to redirect_uri with code or error"},
        400: {"description": "unknown client or unregistered redirect_uri: a page, no redirect"},
    },
)
async def authorize(request: Request) -> Response:
    """Validate, make sure the customer is signed in, then ask for (or reuse) consent."""
    runtime = runtime_of(request)
    async with runtime.sessions() as db, db.begin():
        try:
            req = await parse_authorize(request.query_params.multi_items(), OAuthRepository(db))
        except AuthorizeRefused as refused:
            return await _refused(request, db, refused)
        except AuthorizeError as error:
            return redirect(error.location)
        found = await signed_in(request, db)
        if (found is None or not found.complete) and "none" in req.prompt:
            return redirect(req.redirect(error="login_required"))
        if "login" in req.prompt:
            # OpenID Connect Core §3.1.2.1: the customer signs in again, whatever session the
            # browser holds, and the request continues after it without the prompt. The
            # session is kept (a link must not sign anyone out); the request now asks for a
            # sign-in newer than this moment.
            now_ms = int(runtime.clock.now().timestamp() * 1000)
            return _sign_in_again(req.url_after_login(now_ms))
        if not _signed_in_after(found, request.query_params.get(LOGIN_AFTER)):
            return _sign_in_again(req.url())
        user = (await require_account(request, db)).user
        return await _ask(request, db, runtime, req, user)


def _sign_in_again(resume: str) -> Response:
    return redirect(f"{PORTAL}/login?notice={SIGN_IN_AGAIN}&next={quote(resume, safe='')}")


def _signed_in_after(found: SignedIn | None, login_after: str | None) -> bool:
    """Whether the session started after `login_after` (ms), if the request names a time."""
    if login_after is None:
        return True
    if found is None or not login_after.isdigit():
        return False
    return found.session.created_at.timestamp() * 1000 > int(login_after)


async def _ask(
    request: Request, db: AsyncSession, runtime: Runtime, req: AuthorizeRequest, user: User
) -> Response:
    """Skip the page when consent already covers the request (and no re-prompt is asked)."""
    if req.client.first_party:
        return await _issue(db, runtime, req, user, req.scopes)
    grant = await ConsentService(db, runtime.clock).active(user.id, req.client.id)
    granted = set(as_list(grant.scopes)) if grant is not None else set()
    if set(req.scopes) <= granted and "consent" not in req.prompt:
        return await _issue(db, runtime, req, user, req.scopes)
    if "none" in req.prompt:
        return redirect(req.redirect(error="consent_required"))
    offer = await _offer(db, runtime, req, user, grant)
    return render(request, "consent.html", _context(req, offer))


async def _offer(
    db: AsyncSession,
    runtime: Runtime,
    req: AuthorizeRequest,
    user: User,
    grant: ConsentGrant | None,
) -> Offer:
    """With prompt_missing_scopes only the scopes not yet granted are asked again."""
    granted = as_list(grant.scopes) if grant is not None else []
    if req.prompt_missing_scopes and grant is not None:
        shown = [s for s in req.scopes if s not in granted]
        kept = ordered(granted)
    else:
        shown, kept = list(req.scopes), []
    chosen = set(as_list(grant.devices)) if grant is not None else set()
    devices = [
        {"ref": d.ref, "name": d.name, "detail": d.detail, "checked": not chosen or d.ref in chosen}
        for d in await owner_devices(db, runtime, user.id, [*shown, *kept])
    ]
    return Offer(shown, kept, devices)


def _context(req: AuthorizeRequest, offer: Offer) -> dict[str, Any]:
    scopes = [
        {
            "words": scope_words(s),
            "mandatory": s in MANDATORY_SCOPES or req.require_requested_scopes,
        }
        for s in offer.shown
    ]
    return {
        "app": req.client,
        "scopes": scopes,
        "kept": [scope_words(s) for s in offer.kept],
        "devices": offer.devices,
        "show_devices": reaches_vehicles(every := [*offer.shown, *offer.kept])
        or reaches_sites(every),
        "hidden": sorted(req.params.items()),
        "require_all": req.require_requested_scopes,
        "show_keypair_step": req.show_keypair_step,
        "action": AUTHORIZE_PATH,
    }


async def _issue(
    db: AsyncSession, runtime: Runtime, req: AuthorizeRequest, user: User, scopes: list[str]
) -> Response:
    """A code bound to everything the token endpoint will check, then back to the app."""
    code = await code_service(db, runtime).issue(
        CodeRequest(
            client=req.client,
            user_id=user.id,
            redirect_uri=req.redirect_uri,
            scopes=scopes,
            code_challenge=req.code_challenge,
            nonce=req.nonce,
        )
    )
    return redirect(req.redirect(code=code))


def _strings(form: FormData, name: str) -> set[str]:
    return {v for v in form.getlist(name) if isinstance(v, str)}


def _form_items(form: FormData) -> Iterable[tuple[str, str]]:
    return [(k, v) for k, v in form.multi_items() if isinstance(v, str)]


@router.post(AUTHORIZE_PATH, include_in_schema=False)
async def decide(request: Request) -> Response:
    """The consent form: re-validate every parameter, then Allow (code) or Deny."""
    runtime = runtime_of(request)
    async with runtime.sessions() as db, db.begin():
        found = await signed_in(request, db)
        form = await read_form(request)
        try:
            req = await parse_authorize(_form_items(form), OAuthRepository(db))
        except AuthorizeRefused as refused:
            return await _refused(request, db, refused)
        except AuthorizeError as error:
            return redirect(error.location)
        if found is None or not found.complete:
            raise PortalRedirect(f"{PORTAL}/login?next={quote(req.url(), safe='')}")
        decision = form.get("decision")
        if decision == "deny":
            denied = req.redirect(error="access_denied", error_description="access denied")
            return redirect(denied)
        if decision != "allow":
            return await _refused(request, db, AuthorizeRefused("invalid_request", CHOOSE))
        response, removed = await _allow(db, runtime, req, found.user, form)
    runtime.directory.forget()  # the new grant applies to the app's next request
    # Only once the narrowed grant is committed: told earlier, ingest could cache the old
    # consent again, and a failed commit would have stopped streams that still exist.
    await stop_streams(runtime.telemetry, removed)
    return response


async def _allow(
    db: AsyncSession,
    runtime: Runtime,
    req: AuthorizeRequest,
    user: User,
    form: FormData,
) -> tuple[Response, list[ConfigState]]:
    """Record the grant; the answer, and the streaming configs the grant no longer covers."""
    if req.client.first_party:
        return await _issue(db, runtime, req, user, req.scopes), []
    consent = ConsentService(db, runtime.clock)
    offer = await _offer(db, runtime, req, user, await consent.active(user.id, req.client.id))
    shown = frozenset(offer.shown)
    if req.require_requested_scopes:
        chosen = shown  # all or nothing: the page offers no choice
    else:
        chosen = (frozenset(_strings(form, "allow_scope")) | MANDATORY_SCOPES) & shown
    refs = frozenset(d["ref"] for d in offer.devices)
    choice = Choice(shown, chosen, refs, frozenset(_strings(form, "allow_device")) & refs)
    grant = await consent.record(user.id, req.client.id, choice)
    removed = await prune_for_grant(db, grant)  # unticked vehicles stop streaming
    scopes = [s for s in req.scopes if s in as_list(grant.scopes)]
    if not scopes:
        denied = req.redirect(error="access_denied", error_description="no scope allowed")
        return redirect(denied), removed
    return await _issue(db, runtime, req, user, scopes), removed
