"""Portal sign-in sessions: an opaque cookie value whose HMAC is the stored key."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from flotta.accounts.models import User, WebSession
from flotta.clock import Clock
from flotta.oauth.service import hmac_hash

SESSION_PREFIX = "fss_"
STAGE_MFA = "mfa"  # password accepted, TOTP step pending
STAGE_FULL = "full"


@dataclass(frozen=True, slots=True)
class SignedIn:
    """A live session and its account."""

    session: WebSession
    user: User

    @property
    def complete(self) -> bool:
        return self.session.stage == STAGE_FULL


class SessionService:
    """Create, resolve and end portal sessions. Never commits: the request owns the unit."""

    def __init__(self, session: AsyncSession, *, secret_key: str, clock: Clock, ttl_s: int):
        self.db = session
        self.secret_key = secret_key
        self.clock = clock
        self.ttl_s = ttl_s

    async def start(self, user: User, stage: str) -> str:
        """A new session for `user`; returns the cookie value (shown only here)."""
        token = f"{SESSION_PREFIX}{secrets.token_urlsafe(32)}"
        now = self.clock.now()
        self.db.add(
            WebSession(
                token_hash=hmac_hash(self.secret_key, token),
                user_id=user.id,
                stage=stage,
                csrf_secret=secrets.token_hex(32),
                created_at=now,
                expires_at=now + timedelta(seconds=self.ttl_s),
            )
        )
        await self.db.flush()
        return token

    async def resolve(self, token: str | None) -> SignedIn | None:
        """The live session behind a cookie value, or None (unknown, expired, malformed)."""
        if not token or not token.startswith(SESSION_PREFIX) or len(token) > 128:
            return None
        row = (
            await self.db.execute(
                select(WebSession).where(WebSession.token_hash == hmac_hash(self.secret_key, token))
            )
        ).scalar_one_or_none()
        if row is None or row.expires_at <= self.clock.now():
            return None
        user = await self.db.get(User, row.user_id)
        return SignedIn(row, user) if user is not None else None

    async def promote(self, token: str) -> str:
        """Finish sign-in after the MFA step: a fresh session replaces the pending one."""
        signed_in = await self.resolve(token)
        if signed_in is None:
            raise LookupError("no pending session")
        await self.db.delete(signed_in.session)
        return await self.start(signed_in.user, STAGE_FULL)

    async def end(self, token: str | None) -> None:
        signed_in = await self.resolve(token)
        if signed_in is not None:
            await self.db.delete(signed_in.session)
            await self.db.flush()

    async def end_all(self, user_id: int) -> None:
        """Sign the account out everywhere (after a password reset)."""
        await self.db.execute(delete(WebSession).where(WebSession.user_id == user_id))
