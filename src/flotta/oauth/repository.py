"""Every query on OAuth clients and refresh tokens."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from flotta.oauth.models import OAuthClient, RefreshFamily, RefreshToken


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

    async def add(self, row: OAuthClient | RefreshFamily | RefreshToken) -> None:
        self.session.add(row)
        await self.session.flush()
