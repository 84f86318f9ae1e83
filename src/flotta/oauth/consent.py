"""Consent grants: what one customer allowed one app (scopes, devices); record, narrow, revoke.

Services never commit, and the Directory caches grants: after the unit of work commits, the
caller calls `runtime.directory.forget()` so a change applies to the app's next request.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from flotta.auth.scopes import OWNER_SCOPES
from flotta.clock import Clock
from flotta.oauth.models import ConsentGrant, as_list
from flotta.oauth.repository import OAuthRepository

VEHICLE_PREFIX = "vehicle:"
# RefreshFamily.revoked_reason when the owner withdraws consent.
CONSENT_REVOKED = "consent_revoked"
_ORDER = {scope: index for index, scope in enumerate(OWNER_SCOPES)}


def vehicle_ref(fleet_id: int) -> str:
    """A grant's device reference for a vehicle (`vehicle:<fleet id>`)."""
    return f"{VEHICLE_PREFIX}{fleet_id}"


def vehicle_ids(devices: Iterable[str]) -> frozenset[int]:
    """Fleet ids among a grant's device references (others, e.g. energy sites, skipped)."""
    ids: set[int] = set()
    for ref in devices:
        kind, _, value = ref.partition(":")
        if kind + ":" == VEHICLE_PREFIX and value.isdigit():
            ids.add(int(value))
    return frozenset(ids)


def ordered(scopes: Iterable[str]) -> list[str]:
    """Scopes in the reference's order (§2.5), unknown ones last, without repeats."""
    unique = set(scopes)
    return sorted(unique, key=lambda s: (_ORDER.get(s, len(_ORDER)), s))


@dataclass(frozen=True, slots=True)
class Choice:
    """What a consent form offered and what the user ticked."""

    shown_scopes: frozenset[str]
    chosen_scopes: frozenset[str]
    shown_devices: frozenset[str]
    chosen_devices: frozenset[str]


def merge(
    scopes: Iterable[str], devices: Iterable[str], choice: Choice
) -> tuple[list[str], list[str]]:
    """Keep what the form did not offer; for what it offered, take the user's choice."""
    kept_scopes = set(scopes) - choice.shown_scopes
    kept_devices = set(devices) - choice.shown_devices
    return (
        ordered(kept_scopes | (choice.chosen_scopes & choice.shown_scopes)),
        sorted(kept_devices | (choice.chosen_devices & choice.shown_devices)),
    )


class ConsentService:
    """Grants over one session; never commits."""

    def __init__(self, session: AsyncSession, clock: Clock) -> None:
        self.repo = OAuthRepository(session)
        self.clock = clock

    async def active(self, user_id: int, client_pk: int) -> ConsentGrant | None:
        return await self.repo.active_grant(user_id, client_pk)

    async def record(self, user_id: int, client_pk: int, choice: Choice) -> ConsentGrant:
        """Allow on the consent page: update the active grant, or start one."""
        now = self.clock.now()
        grant = await self.repo.active_grant(user_id, client_pk)
        if grant is None:
            scopes, devices = merge((), (), choice)
            grant = ConsentGrant(
                user_id=user_id,
                client_pk=client_pk,
                scopes=scopes,
                devices=devices,
                created_at=now,
                updated_at=now,
            )
            await self.repo.add(grant)
            return grant
        grant.scopes, grant.devices = merge(as_list(grant.scopes), as_list(grant.devices), choice)
        grant.updated_at = now
        await self.repo.session.flush()
        return grant

    async def narrow(
        self, grant: ConsentGrant, scopes: Iterable[str], devices: Iterable[str]
    ) -> ConsentGrant:
        """The owner console: keep a subset. Refresh tokens then mint only what is left."""
        keep_scopes = set(scopes) & set(as_list(grant.scopes))
        keep_devices = set(devices) & set(as_list(grant.devices))
        grant.scopes = ordered(keep_scopes)
        grant.devices = sorted(keep_devices)
        grant.updated_at = self.clock.now()
        for family in await self.repo.live_families(grant.user_id, grant.client_pk):
            family.scopes = [s for s in as_list(family.scopes) if s in keep_scopes]
        await self.repo.session.flush()
        return grant

    async def revoke(self, grant: ConsentGrant) -> None:
        """Withdraw consent and end the app's refresh tokens for this user."""
        now = self.clock.now()
        grant.revoked_at = now
        grant.updated_at = now
        for family in await self.repo.live_families(grant.user_id, grant.client_pk):
            await self.repo.revoke_family(family.id, now, CONSENT_REVOKED)
        await self.repo.session.flush()
