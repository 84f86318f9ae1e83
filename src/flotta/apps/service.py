"""Applications: submit, review (approve or reject, with mail), client secrets, public keys.

An application IS an `OAuthClient` row: "pending" until an operator decides, then "approved"
(it may obtain tokens) or "rejected". Never commits: the caller owns the unit of work.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import astuple

from sqlalchemy.ext.asyncio import AsyncSession

from flotta.accounts.models import User
from flotta.apps.errors import (
    AlreadyReviewed,
    AppNotFound,
    ChangedSinceReview,
    InvalidApplication,
    NotApproved,
    NotEditable,
    NotEligible,
    ReasonRequired,
)
from flotta.apps.public_key import public_key_hex
from flotta.apps.repository import APPROVED, PENDING, REJECTED, AppRepository
from flotta.apps.schemas import ApplicationInput
from flotta.apps.validation import root_domain, validate_application
from flotta.clock import Clock
from flotta.mail.service import queue_mail
from flotta.oauth.models import OAuthClient
from flotta.oauth.service import SECRET_PREFIX, hmac_hash

MAX_REASON = 2000
# What a developer may change after submitting (Tesla's dashboard edits these too).
EDITABLE = ("name", "description", "intended_use", "website", "redirect_uris", "allowed_origins")
FIELDS = tuple(ApplicationInput.__dataclass_fields__)
REJECTED_IS_FINAL = "A rejected application cannot be changed: submit a new one instead."


def editable(app: OAuthClient) -> tuple[str, ...]:
    """The fields of `app` its developer may change: EDITABLE, and its domain while it has none
    (an app registered without the form, such as the demo's, gets one once)."""
    return EDITABLE if app.domain else (*EDITABLE, "domain")


def review_version(app: OAuthClient) -> str:
    """The application as its review page shows it (its form and its public key), in 16 hex
    digits: an operator's decision carries the version it was made on, so a developer's edit or
    key upload made meanwhile (pending applications can be changed) is not approved unseen."""
    shown = repr((astuple(ApplicationService.as_input(app)), app.public_key))
    return hashlib.sha256(shown.encode()).hexdigest()[:16]


def missing_steps(user: User) -> list[str]:
    """What the account still needs before it may apply (the issue: verified e-mail and MFA)."""
    steps = []
    if user.email_verified_at is None:
        steps.append("verify your e-mail address")
    if user.totp_enabled_at is None:
        steps.append("turn on two-factor authentication (an authenticator app)")
    return steps


class ApplicationService:
    """Everything a developer or an operator does to an application."""

    def __init__(self, db: AsyncSession, *, secret_key: str, clock: Clock, base_url: str):
        self.repo = AppRepository(db)
        self.db = db
        self.secret_key = secret_key
        self.clock = clock
        self.base_url = base_url.rstrip("/")

    async def submit(self, owner: User, data: ApplicationInput) -> OAuthClient:
        """Record a pending application with a new random client_id and no secret yet."""
        steps = missing_steps(owner)
        if steps:
            raise NotEligible("Before you apply, " + " and ".join(steps) + ".")
        valid, errors = validate_application(data)
        if valid is None:
            raise InvalidApplication(errors)
        app = OAuthClient(
            client_id=secrets.token_hex(16),
            secret_hash=None,
            name=valid.name,
            owner_id=owner.id,
            client_type=valid.client_type,
            redirect_uris=valid.redirect_uris,
            scopes=valid.scopes,
            status=PENDING,
            created_at=self.clock.now(),
            description=valid.description,
            intended_use=valid.intended_use,
            website=valid.website,
            domain=valid.domain,
            allowed_origins=valid.allowed_origins,
            first_party=False,
        )
        return await self.repo.add(app)

    async def edit(self, owner: User, client_id: str, data: ApplicationInput) -> OAuthClient:
        """Change a pending or approved application's details (`editable`); the rest stays as
        submitted: its domain is what partner registration and the public key hang on, its
        scopes are what owners consented to, its type is what its credentials are for."""
        app = await self.owned(owner, client_id)
        if app.status == REJECTED:
            raise NotEditable(REJECTED_IS_FINAL)
        valid, errors = validate_application(self.edited(app, data))
        if "domain" in errors and app.domain:  # only the origins can have broken its match
            errors.pop("domain")
            errors["allowed_origins"] = (
                f"keep an origin under {root_domain(app.domain)}: the app's domain "
                f"{app.domain} must share its root domain with one of them"
            )
        if errors:
            raise InvalidApplication(errors)
        assert valid is not None
        if valid.domain != app.domain:  # set once (`editable`): as partner registration would
            holder = await self.repo.registered_for(valid.domain)
            if holder is not None and holder.id != app.id:
                raise InvalidApplication(
                    {"domain": f"{valid.domain} is registered by another application"}
                )
        for name in editable(app):
            setattr(app, name, getattr(valid, name))
        await self.db.flush()
        return app

    @classmethod
    def edited(cls, app: OAuthClient, data: ApplicationInput) -> ApplicationInput:
        """The form of `app` with its editable fields as typed in `data`."""
        kept, fields = cls.as_input(app), editable(app)
        return ApplicationInput(
            **{name: getattr(data if name in fields else kept, name) for name in FIELDS}
        )

    @staticmethod
    def as_input(app: OAuthClient) -> ApplicationInput:
        """The application as its form shows it (one entry per line)."""
        return ApplicationInput(
            name=app.name,
            description=app.description,
            intended_use=app.intended_use,
            website=app.website,
            domain=app.domain,
            redirect_uris="\n".join(app.redirect_uris or []),
            allowed_origins="\n".join(app.allowed_origins or []),
            scopes=tuple(app.scopes or ()),
            client_type=app.client_type,
        )

    async def get(self, client_id: str, *, for_update: bool = False) -> OAuthClient:
        app = await self.repo.by_client_id(client_id, for_update=for_update)
        if app is None:
            raise AppNotFound(f"no application with client_id {client_id!r}")
        return app

    async def owned(self, owner: User, client_id: str) -> OAuthClient:
        """The owner's application; another account's looks absent."""
        app = await self.repo.by_client_id(client_id)
        if app is None or app.owner_id != owner.id:
            raise AppNotFound("There is no application with this client ID on your account.")
        return app

    async def approve(
        self, client_id: str, note: str = "", reviewed: str | None = None
    ) -> OAuthClient:
        """Approve a pending application and e-mail its developer the next steps. `reviewed`:
        the `review_version` the operator's page showed (None: not checked)."""
        app = await self._decide(client_id, APPROVED, note.strip()[:MAX_REASON] or None, reviewed)
        await self._mail_owner(app, *self._approved_mail(app))
        return app

    async def reject(self, client_id: str, reason: str, reviewed: str | None = None) -> OAuthClient:
        """Reject a pending application; the reason is required and sent to the developer."""
        reason = reason.strip()
        if not reason:
            raise ReasonRequired("Give a reason: the developer reads it to fix the application.")
        app = await self._decide(client_id, REJECTED, reason[:MAX_REASON], reviewed)
        await self._mail_owner(app, *self._rejected_mail(app))
        return app

    async def issue_secret(self, app: OAuthClient) -> str:
        """A new client secret (returned once, stored as its HMAC); the old one stops working."""
        if app.status != APPROVED:
            raise NotApproved("A client secret is issued once the application is approved.")
        if app.client_type != "confidential":
            raise NotApproved("Public applications use PKCE and have no client secret.")
        secret = f"{SECRET_PREFIX}{secrets.token_urlsafe(32)}"
        app.secret_hash = hmac_hash(self.secret_key, secret)
        app.secret_created_at = self.clock.now()
        await self.db.flush()
        return secret

    async def set_public_key(self, app: OAuthClient, pem: str) -> str:
        """Store the app's P-256 key (uncompressed point hex); InvalidPublicKey says why not."""
        app.public_key = public_key_hex(pem)
        await self.db.flush()
        return app.public_key

    async def _decide(
        self, client_id: str, status: str, reason: str | None, reviewed: str | None
    ) -> OAuthClient:
        # Locked: an edit committing between the version check and the decision would
        # otherwise be approved unseen; one committed before the lock is read here and refused.
        app = await self.get(client_id, for_update=True)
        if app.status == PENDING and reviewed is not None and reviewed != review_version(app):
            raise ChangedSinceReview(
                "The developer changed this application after you opened it: the page now "
                "shows the current version. Review it, then decide again."
            )
        if app.status != PENDING or not await self.repo.decide(
            app, status, reason, self.clock.now()
        ):
            raise AlreadyReviewed(app.status, app.reviewed_at)
        return app

    async def _mail_owner(self, app: OAuthClient, subject: str, body: str) -> None:
        owner = await self.repo.owner(app)
        if owner is not None:
            await queue_mail(self.db, self.clock, to=owner.email, subject=subject, body=body)

    def _approved_mail(self, app: OAuthClient) -> tuple[str, str]:
        page = f"{self.base_url}/portal/apps/{app.client_id}"
        steps = [
            f"Client ID: {app.client_id}",
            "",
            "Next steps:",
        ]
        if app.client_type == "confidential":
            steps.append(f"1. Generate your client secret on {page} (it is shown only once).")
        else:
            steps.append(f"1. Your app is public: it signs users in with PKCE, no secret. {page}")
        steps += [
            "2. Host your P-256 public key at https://"
            f"{app.domain}/.well-known/appspecific/com.tesla.3p.public-key.pem "
            "or upload it on the application's page.",
            "3. Register your domain with POST /api/1/partner_accounts using a partner token.",
        ]
        note = f"\nNote from the reviewer: {app.review_reason}\n" if app.review_reason else ""
        body = f'Good news: your application "{app.name}" was approved.\n{note}\n' + "\n".join(
            steps
        )
        return f'Your Flotta application "{app.name}" was approved', body + "\n"

    def _rejected_mail(self, app: OAuthClient) -> tuple[str, str]:
        body = (
            f'Your application "{app.name}" (client ID {app.client_id}) was not approved.\n\n'
            f"Reason: {app.review_reason}\n\n"
            f"You can address this and submit a new application: {self.base_url}/portal/apps/new\n"
        )
        return f'Your Flotta application "{app.name}" was not approved', body
