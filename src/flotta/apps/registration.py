"""Partner accounts (reference §3.2): register an app's domain and its public key.

Registration runs in two units of work around the key download, so no database transaction
stays open while a remote server is slow: `plan` checks the request, the caller fetches the
key, `complete` records the result.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from flotta.apps.errors import PartnerRefused
from flotta.apps.repository import APPROVED, AppRepository
from flotta.apps.validation import domain_matches, domain_problem, origin_host, root_domain
from flotta.clock import Clock
from flotta.oauth.models import OAuthClient, as_list


@dataclass(frozen=True, slots=True)
class RegistrationPlan:
    """A checked request: which app, which domain, where its key should be."""

    client_pk: int
    domain: str
    key_url: str


class PartnerRegistration:
    """Register partner accounts and answer their public keys. Never commits."""

    def __init__(
        self, db: AsyncSession, *, clock: Clock, key_url_template: str, base_url: str
    ) -> None:
        self.repo = AppRepository(db)
        self.db = db
        self.clock = clock
        self.key_url_template = key_url_template
        self.base_url = base_url.rstrip("/")

    async def plan(self, client_id: str, domain: str) -> RegistrationPlan:
        """Check the app and the domain rules before anything is downloaded."""
        app = await self.repo.by_client_id(client_id)
        if app is None or app.status != APPROVED:
            raise PartnerRefused(
                "this application is not approved; partner accounts need an approved app",
                status=403,
                key="unauthorized_client",
            )
        problem = domain_problem(domain)
        if problem:
            # Tesla's wording (vehicle-command#20): "Invalid domain: …. Ensure that …".
            raise PartnerRefused(
                f"Invalid domain: {domain[:253]}. Ensure that domain is lowercase and starts "
                f"without https:// ({problem})",
                status=400,
            )
        origins = as_list(app.allowed_origins)
        if not domain_matches(domain, app.domain, origins):
            raise PartnerRefused(_root_rule(domain, app.domain, origins), status=412)
        holder = await self.repo.registered_for(domain)
        if holder is not None and holder.id != app.id:
            raise PartnerRefused("Validation failed: Domain has already been taken", status=422)
        return RegistrationPlan(app.id, domain, self.key_url_template.format(domain=domain))

    async def complete(
        self, plan: RegistrationPlan, fetched_key: str | None, failure: str | None
    ) -> OAuthClient:
        """Record the registration with the fetched key, else the uploaded one, else refuse."""
        app = await self.db.get(OAuthClient, plan.client_pk)
        if app is None:
            raise PartnerRefused("this application no longer exists", status=403)
        key = fetched_key or app.public_key
        if key is None:
            # Tesla's wording (fleet-telemetry#355); the hint offers the portal upload.
            raise PartnerRefused(
                f"Public key download failed for {plan.key_url}, error: {failure or 'unknown'}",
                status=400,
                hint=f"Host your P-256 public key PEM at {plan.key_url}, or upload it on "
                f"{self.base_url}/portal/apps/{app.client_id}, then register again.",
            )
        holder = await self.repo.registered_for(plan.domain)
        if holder is not None and holder.id != app.id:
            raise PartnerRefused("Validation failed: Domain has already been taken", status=422)
        app.public_key = key
        app.domain = plan.domain
        app.partner_registered_at = self.clock.now()
        await self.db.flush()
        return app

    async def public_key(self, domain: str) -> str:
        """The key registered for `domain`; 404 when no partner account holds it."""
        app = await self.repo.registered_for(domain.strip())
        if app is None or not app.public_key:
            raise PartnerRefused(
                f"no partner account is registered for the domain {domain[:253]!r}",
                status=404,
                key="not_found",
            )
        return app.public_key


def _root_rule(domain: str, own: str, origins: list[str]) -> str:
    """Tesla's 412 sentence (fabianhu/tesla_api#9), completed with what would match."""
    roots = sorted({root_domain(origin_host(o)) for o in origins if origin_host(o)})
    allowed = ", ".join(roots) if roots else "none: the app has no allowed origins"
    also = f" or equal the app's domain {own}" if own else ""
    return (
        f"Root domain {root_domain(domain)} must match the root domain of an allowed origin "
        f"of this application ({allowed}){also}"
    )
