"""Every query on the outbox. A row is claimed (its attempt counted) before it is sent."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from flotta.mail.models import OutboxMessage


class OutboxRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def unsent(self, max_attempts: int, limit: int = 200) -> list[OutboxMessage]:
        """Messages still to deliver, oldest first."""
        result = await self.session.execute(
            select(OutboxMessage)
            .where(OutboxMessage.sent_at.is_(None), OutboxMessage.attempts < max_attempts)
            .order_by(OutboxMessage.id)
            .limit(limit)
        )
        return list(result.scalars())

    async def claim(
        self, message_id: int, seen_attempts: int, attempts: int, **values: Any
    ) -> bool:
        """Move `attempts` on if nobody else did since we read the row; False if they did.

        Two dispatchers (two processes) reading the same row both try; exactly one wins.
        """
        result = await self.session.execute(
            update(OutboxMessage)
            .where(
                OutboxMessage.id == message_id,
                OutboxMessage.attempts == seen_attempts,
                OutboxMessage.sent_at.is_(None),
            )
            .values(attempts=attempts, **values)
        )
        return bool(getattr(result, "rowcount", 0) == 1)

    async def mark_sent(self, message_id: int, now: datetime) -> None:
        await self.session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == message_id)
            .values(sent_at=now, last_error=None)
        )

    async def mark_failed(self, message_id: int, error: str) -> None:
        await self.session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == message_id)
            .values(last_error=error[:500])
        )

    async def newest(self, limit: int = 200) -> list[OutboxMessage]:
        result = await self.session.execute(
            select(OutboxMessage).order_by(OutboxMessage.id.desc()).limit(limit)
        )
        return list(result.scalars())
