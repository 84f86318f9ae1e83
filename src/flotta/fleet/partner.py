"""`/api/1/partner_accounts`: register an app's domain and read public keys (reference §3.2)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from starlette.responses import Response

from flotta.apps.errors import PartnerRefused
from flotta.apps.public_key import KeyFetchFailed, fetch_public_key
from flotta.apps.registration import PartnerRegistration
from flotta.apps.schemas import (
    PartnerAccount,
    PartnerAccountEnvelope,
    PartnerAccountRequest,
    PublicKeyEnvelope,
)
from flotta.auth.tokens import Principal
from flotta.errors import FlottaError, MissingScopes
from flotta.fleet.deps import PrincipalDep, RuntimeDep
from flotta.fleet.errors_doc import ErrorEnvelope
from flotta.fleet.responses import envelope
from flotta.runtime import Runtime

router = APIRouter(tags=["partner"])


async def partner_token(who: PrincipalDep) -> Principal:
    """Only a partner token (client_credentials) may call these endpoints."""
    if not who.partner:
        raise MissingScopes("this endpoint needs a partner token (client_credentials)")
    return who


PartnerDep = Annotated[Principal, Depends(partner_token)]


def _errors(descriptions: dict[int, str]) -> dict[int | str, dict[str, Any]]:
    return {s: {"model": ErrorEnvelope, "description": d} for s, d in descriptions.items()}


_TOKEN_ERRORS = {
    401: "Missing, malformed or expired access token",
    403: "Not a partner token, or the app is not approved",
}
REGISTER_ERRORS = _errors(
    {
        400: "Invalid domain, or the public key could not be downloaded and none was uploaded",
        **_TOKEN_ERRORS,
        412: "The domain's root does not match an allowed origin of the app",
        422: "The domain is registered by another app",
    }
)
PUBLIC_KEY_ERRORS = _errors(
    {400: "Missing domain param", **_TOKEN_ERRORS, 404: "No partner account for this domain"}
)


def _registration(db: Any, runtime: Runtime) -> PartnerRegistration:
    settings = runtime.settings
    return PartnerRegistration(
        db,
        clock=runtime.clock,
        key_url_template=settings.partner.key_url_template,
        base_url=settings.public_base_url,
    )


def _fleet_error(refused: PartnerRefused) -> FlottaError:
    return FlottaError(refused.hint, status=refused.status, key=refused.key)


@router.post(
    "/api/1/partner_accounts",
    summary="Register the app's domain and public key (partner token)",
    response_model=PartnerAccountEnvelope,
    responses=REGISTER_ERRORS,
)
async def register(body: PartnerAccountRequest, runtime: RuntimeDep, who: PartnerDep) -> Response:
    """Fetch the key from the domain's .well-known path (else use the uploaded one); idempotent."""
    try:
        async with runtime.sessions() as db, db.begin():
            plan = await _registration(db, runtime).plan(who.client_id, body.domain)
        fetched, failure = None, None
        try:
            fetched = await fetch_public_key(
                plan.key_url,
                timeout_s=runtime.settings.partner.key_fetch_timeout_s,
                outbound=runtime.outbound,
            )
        except KeyFetchFailed as exc:
            failure = exc.reason
        async with runtime.sessions() as db, db.begin():
            app = await _registration(db, runtime).complete(plan, fetched, failure)
            account = PartnerAccount.of(app)
    except PartnerRefused as refused:
        raise _fleet_error(refused) from None
    runtime.directory.forget()  # the app's tokens stop getting 412 on their next request
    return envelope(account.model_dump())


@router.get(
    "/api/1/partner_accounts/public_key",
    summary="The public key registered for a domain (partner token)",
    response_model=PublicKeyEnvelope,
    responses=PUBLIC_KEY_ERRORS,
)
async def public_key(
    runtime: RuntimeDep,
    who: PartnerDep,
    domain: Annotated[str, Query(min_length=1, max_length=253)],
) -> Response:
    """`{"public_key": "04…"}` for a registered domain."""
    try:
        async with runtime.sessions() as db:
            key = await _registration(db, runtime).public_key(domain)
    except PartnerRefused as refused:
        raise _fleet_error(refused) from None
    return envelope({"public_key": key})
