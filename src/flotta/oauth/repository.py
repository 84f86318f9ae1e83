"""Every query on OAuth clients, consent grants, authorization codes and refresh tokens."""

from __future__ import annotations

from datetime import datetime
from itertools import product

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from flotta.db.chunks import chunked
from flotta.oauth.models import (
    AuthorizationCode,
    ConsentGrant,
    OAuthClient,
    RefreshFamily,
    RefreshToken,
)


class OAuthRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def client(self, client_id: str) -> OAuthClient | None:
        result = await self.session.execute(
            select(OAuthClient).where(OAuthClient.client_id == client_id)
        )
        return result.scalar_one_or_none()

    async def client_by_pk(self, pk: int) -> OAuthClient | None:
        return await self.session.get(OAuthClient, pk)

    async def family(self, family_id: int) -> RefreshFamily | None:
        return await self.session.get(RefreshFamily, family_id)

    async def token_by_hash(self, token_hash: str) -> RefreshToken | None:
        result = await self.session.execute(
            select(RefreshToken).where(RefreshToken.token_hash == token_hash)
        )
        return result.scalar_one_or_none()

    async def tokens_of(self, family_id: int) -> list[RefreshToken]:
        result = await self.session.execute(
            select(RefreshToken)
            .where(RefreshToken.family_id == family_id)
            .order_by(RefreshToken.id)
        )
        return list(result.scalars())

    async def claim(self, token_id: int, now: datetime) -> bool:
        """Mark an unused token used; False when a concurrent refresh got there first."""
        result = await self.session.execute(
            update(RefreshToken)
            .where(
                RefreshToken.id == token_id,
                RefreshToken.used_at.is_(None),
                RefreshToken.superseded_at.is_(None),
            )
            .values(used_at=now)
            .execution_options(synchronize_session="fetch")
        )
        return bool(getattr(result, "rowcount", 0) == 1)

    async def supersede_live(self, family_id: int, now: datetime) -> None:
        """Retire the family's unused tokens (a grace retry replaces the pending child)."""
        await self.session.execute(
            update(RefreshToken)
            .where(
                RefreshToken.family_id == family_id,
                RefreshToken.used_at.is_(None),
                RefreshToken.superseded_at.is_(None),
            )
            .values(superseded_at=now)
        )

    async def add(
        self,
        row: OAuthClient | RefreshFamily | RefreshToken | ConsentGrant | AuthorizationCode,
    ) -> None:
        self.session.add(row)
        await self.session.flush()

    async def revoke_family(self, family_id: int, now: datetime, reason: str) -> None:
        await self.session.execute(
            update(RefreshFamily)
            .where(RefreshFamily.id == family_id, RefreshFamily.revoked_at.is_(None))
            .values(revoked_at=now, revoked_reason=reason)
            .execution_options(synchronize_session="fetch")
        )

    async def live_families(self, user_id: int, client_pk: int) -> list[RefreshFamily]:
        """The user's unrevoked refresh-token families for one app."""
        result = await self.session.execute(
            select(RefreshFamily).where(
                RefreshFamily.user_id == user_id,
                RefreshFamily.client_pk == client_pk,
                RefreshFamily.revoked_at.is_(None),
            )
        )
        return list(result.scalars())

    async def code_by_hash(self, code_hash: str) -> AuthorizationCode | None:
        result = await self.session.execute(
            select(AuthorizationCode).where(AuthorizationCode.code_hash == code_hash)
        )
        return result.scalar_one_or_none()

    async def claim_code(self, code_id: int, now: datetime) -> bool:
        """Mark an unused code used; False when a concurrent exchange got there first."""
        result = await self.session.execute(
            update(AuthorizationCode)
            .where(AuthorizationCode.id == code_id, AuthorizationCode.used_at.is_(None))
            .values(used_at=now)
            .execution_options(synchronize_session="fetch")
        )
        return bool(getattr(result, "rowcount", 0) == 1)

    async def active_grant(self, user_id: int, client_pk: int) -> ConsentGrant | None:
        """The user's unrevoked consent to one app (the newest, should there be several)."""
        result = await self.session.execute(
            select(ConsentGrant)
            .where(
                ConsentGrant.user_id == user_id,
                ConsentGrant.client_pk == client_pk,
                ConsentGrant.revoked_at.is_(None),
            )
            .order_by(ConsentGrant.id.desc())
            .limit(1)
        )
        return result.scalar_one_or_none()

    async def active_grants(
        self, user_ids: set[int], client_pks: set[int]
    ) -> dict[tuple[int, int], ConsentGrant]:
        """`active_grant` for every (user, app) of the two sets, a query per few thousand
        users (the apps are few)."""
        found: dict[tuple[int, int], ConsentGrant] = {}
        for users, apps in product(chunked(user_ids), chunked(client_pks)):
            result = await self.session.scalars(
                select(ConsentGrant)
                .where(
                    ConsentGrant.user_id.in_(users),
                    ConsentGrant.client_pk.in_(apps),
                    ConsentGrant.revoked_at.is_(None),
                )
                .order_by(ConsentGrant.id)
            )
            # In id order, so the newest of a pair's grants is the one kept.
            found.update({(row.user_id, row.client_pk): row for row in result.all()})
        return found

    async def grant_of_user(self, grant_id: int, user_id: int) -> ConsentGrant | None:
        """An unrevoked grant, only when it belongs to `user_id`."""
        result = await self.session.execute(
            select(ConsentGrant).where(
                ConsentGrant.id == grant_id,
                ConsentGrant.user_id == user_id,
                ConsentGrant.revoked_at.is_(None),
            )
        )
        return result.scalar_one_or_none()

    async def grants_with_apps(self, user_id: int) -> list[tuple[ConsentGrant, OAuthClient]]:
        """The user's unrevoked grants with their apps, oldest first."""
        result = await self.session.execute(
            select(ConsentGrant, OAuthClient)
            .join(OAuthClient, OAuthClient.id == ConsentGrant.client_pk)
            .where(ConsentGrant.user_id == user_id, ConsentGrant.revoked_at.is_(None))
            .order_by(ConsentGrant.created_at, ConsentGrant.id)
        )
        return [(grant, app) for grant, app in result.all()]
