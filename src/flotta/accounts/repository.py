"""Every query on accounts: users, one-time links, recovery codes, and what a reset revokes."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from flotta.accounts.models import AccountToken, RecoveryCode, User
from flotta.oauth.models import AuthorizationCode, RefreshFamily


class UserRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, user_id: int) -> User | None:
        return await self.session.get(User, user_id)

    async def by_uuid(self, uuid: str) -> User | None:
        result = await self.session.execute(select(User).where(User.uuid == uuid))
        return result.scalar_one_or_none()

    async def by_email(self, email: str) -> User | None:
        result = await self.session.execute(select(User).where(User.email == email.lower()))
        return result.scalar_one_or_none()

    async def add(self, user: User) -> User:
        self.session.add(user)
        await self.session.flush()
        return user

    async def count_failure(self, user_id: int) -> int:
        """Add one failed sign-in atomically (concurrent guesses each count); the new total."""
        result = await self.session.execute(
            update(User)
            .where(User.id == user_id)
            .values(failed_logins=User.failed_logins + 1)
            .returning(User.failed_logins)
            .execution_options(synchronize_session="fetch")
        )
        return int(result.scalar_one())

    async def advance_totp_step(self, user_id: int, step: int) -> bool:
        """Record an accepted TOTP step; False when it is not later than the last one (replay)."""
        result = await self.session.execute(
            update(User)
            .where(
                User.id == user_id,
                or_(User.totp_last_step.is_(None), User.totp_last_step < step),
            )
            .values(totp_last_step=step)
            .execution_options(synchronize_session="fetch")
        )
        return bool(getattr(result, "rowcount", 0) == 1)

    async def expire_codes(self, user_id: int, now: datetime) -> None:
        """End the account's authorization codes not exchanged yet: one issued before a
        password change would otherwise start a refresh family that outlives it."""
        await self.session.execute(
            update(AuthorizationCode)
            .where(
                AuthorizationCode.user_id == user_id,
                AuthorizationCode.used_at.is_(None),
                AuthorizationCode.expires_at > now,
            )
            .values(expires_at=now)
            .execution_options(synchronize_session="fetch")
        )

    async def revoke_refresh_families(self, user_id: int, now: datetime, reason: str) -> int:
        """Revoke every live refresh-token family of the account; how many were live."""
        result = await self.session.execute(
            update(RefreshFamily)
            .where(RefreshFamily.user_id == user_id, RefreshFamily.revoked_at.is_(None))
            .values(revoked_at=now, revoked_reason=reason)
            .execution_options(synchronize_session="fetch")
        )
        return int(getattr(result, "rowcount", 0) or 0)


class AccountTokenRepository:
    """One-time links (verify the address, reset the password), known by their HMAC."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, token: AccountToken) -> None:
        self.session.add(token)
        await self.session.flush()

    async def by_hash(self, purpose: str, token_hash: str) -> AccountToken | None:
        result = await self.session.execute(
            select(AccountToken).where(
                AccountToken.token_hash == token_hash, AccountToken.purpose == purpose
            )
        )
        return result.scalar_one_or_none()

    async def claim(self, token_id: int, now: datetime) -> bool:
        """Mark a link used; False when it already was (a concurrent click got there first)."""
        result = await self.session.execute(
            update(AccountToken)
            .where(AccountToken.id == token_id, AccountToken.used_at.is_(None))
            .values(used_at=now)
            .execution_options(synchronize_session="fetch")
        )
        return bool(getattr(result, "rowcount", 0) == 1)

    async def issued_since(self, user_id: int, purpose: str, since: datetime) -> int:
        result = await self.session.execute(
            select(func.count())
            .select_from(AccountToken)
            .where(
                AccountToken.user_id == user_id,
                AccountToken.purpose == purpose,
                AccountToken.created_at > since,
            )
        )
        return int(result.scalar_one())

    async def retire_all(self, user_id: int, purpose: str, now: datetime) -> None:
        """Use up every outstanding link of this kind (after a reset, older links must die)."""
        await self.session.execute(
            update(AccountToken)
            .where(
                AccountToken.user_id == user_id,
                AccountToken.purpose == purpose,
                AccountToken.used_at.is_(None),
            )
            .values(used_at=now)
            .execution_options(synchronize_session="fetch")
        )


class RecoveryCodeRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def replace(self, user_id: int, code_hashes: list[str]) -> None:
        """Drop the account's codes (used or not) and store a new set."""
        await self.session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user_id))
        self.session.add_all(RecoveryCode(user_id=user_id, code_hash=h) for h in code_hashes)
        await self.session.flush()

    async def claim(self, user_id: int, code_hash: str, now: datetime) -> bool:
        """Use an unused code of this account; False when there is none (wrong or used)."""
        result = await self.session.execute(
            update(RecoveryCode)
            .where(
                RecoveryCode.user_id == user_id,
                RecoveryCode.code_hash == code_hash,
                RecoveryCode.used_at.is_(None),
            )
            .values(used_at=now)
            .execution_options(synchronize_session="fetch")
        )
        return bool(getattr(result, "rowcount", 0) >= 1)

    async def unused_count(self, user_id: int) -> int:
        result = await self.session.execute(
            select(func.count())
            .select_from(RecoveryCode)
            .where(RecoveryCode.user_id == user_id, RecoveryCode.used_at.is_(None))
        )
        return int(result.scalar_one())
