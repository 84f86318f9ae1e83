"""Every query on applications (OAuth clients as developers apply for them)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from flotta.accounts.models import User
from flotta.oauth.models import OAuthClient

PENDING = "pending"
APPROVED = "approved"
REJECTED = "rejected"
STATUSES = (PENDING, APPROVED, REJECTED)
MAX_LISTED = 500


class AppRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def by_client_id(self, client_id: str, *, for_update: bool = False) -> OAuthClient | None:
        """`for_update`: lock the row until the transaction ends (PostgreSQL; SQLite has one
        writer at a time anyway), and read it as committed now."""
        query = select(OAuthClient).where(OAuthClient.client_id == client_id)
        if for_update:
            query = query.with_for_update().execution_options(populate_existing=True)
        result = await self.session.execute(query)
        return result.scalar_one_or_none()

    async def of_owner(self, owner_id: int) -> list[OAuthClient]:
        """An account's applications, newest first."""
        result = await self.session.execute(
            select(OAuthClient)
            .where(OAuthClient.owner_id == owner_id)
            .order_by(OAuthClient.created_at.desc(), OAuthClient.id.desc())
        )
        return list(result.scalars())

    async def for_review(self, status: str | None = None) -> list[tuple[OAuthClient, str | None]]:
        """Applications with their owner's e-mail: pending oldest first, then the rest newest."""
        query = (
            select(OAuthClient, User.email)
            .outerjoin(User, User.id == OAuthClient.owner_id)
            .limit(MAX_LISTED)
        )
        if status is not None:
            query = query.where(OAuthClient.status == status)
        pending = await self.session.execute(
            query.where(OAuthClient.status == PENDING).order_by(
                OAuthClient.created_at, OAuthClient.id
            )
        )
        others = await self.session.execute(
            query.where(OAuthClient.status != PENDING).order_by(
                OAuthClient.created_at.desc(), OAuthClient.id.desc()
            )
        )
        return [(row[0], row[1]) for row in [*pending.all(), *others.all()]]

    async def decide(
        self, app: OAuthClient, status: str, reason: str | None, now: datetime
    ) -> bool:
        """Record a review only if the app is still pending (two operators may race)."""
        result = await self.session.execute(
            update(OAuthClient)
            .where(OAuthClient.id == app.id, OAuthClient.status == PENDING)
            .values(status=status, review_reason=reason, reviewed_at=now)
            .execution_options(synchronize_session=False)
        )
        await self.session.refresh(app)
        return bool(getattr(result, "rowcount", 0) == 1)

    async def registered_for(self, domain: str) -> OAuthClient | None:
        """The application whose partner account holds `domain`."""
        result = await self.session.execute(
            select(OAuthClient)
            .where(OAuthClient.domain == domain, OAuthClient.partner_registered_at.is_not(None))
            .order_by(OAuthClient.partner_registered_at.desc())
            .limit(1)
        )
        return result.scalar_one_or_none()

    async def owner(self, app: OAuthClient) -> User | None:
        return await self.session.get(User, app.owner_id) if app.owner_id is not None else None

    async def user_by_email(self, email: str) -> User | None:
        result = await self.session.execute(select(User).where(User.email == email.strip().lower()))
        return result.scalar_one_or_none()

    async def add(self, app: OAuthClient) -> OAuthClient:
        self.session.add(app)
        await self.session.flush()
        return app
