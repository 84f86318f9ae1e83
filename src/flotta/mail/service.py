"""Queue e-mail inside the caller's unit of work; the dispatcher delivers it after commit."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from flotta.clock import Clock
from flotta.mail.models import OutboxMessage


async def queue_mail(
    db: AsyncSession, clock: Clock, *, to: str, subject: str, body: str
) -> OutboxMessage:
    """Record a message in the outbox; it is sent only if the surrounding transaction commits."""
    message = OutboxMessage(
        to_address=to, subject=subject, body_text=body, created_at=clock.now(), attempts=0
    )
    db.add(message)
    await db.flush()
    return message
