"""TOTP enrolment, recovery codes, and checking a second factor. Never commits."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from flotta.accounts import totp
from flotta.accounts.errors import AccountRefused
from flotta.accounts.models import User
from flotta.accounts.repository import RecoveryCodeRepository, UserRepository
from flotta.clock import Clock
from flotta.oauth.service import hmac_hash

WRONG_CODE = (
    "That code is not valid. Enter the current 6-digit code from your authenticator app "
    "(check that your phone's clock is set automatically), or one of your recovery codes."
)
REPLAYED_CODE = "That code was already used. Wait for the next code in your app and enter it."


@dataclass(frozen=True, slots=True)
class Enrolment:
    """What the enrolment page shows: the QR code and the secret for manual entry."""

    secret: str
    uri: str
    qr_svg: str


class MfaService:
    """RFC 6238 TOTP with replay protection, and hashed single-use recovery codes."""

    def __init__(self, db: AsyncSession, *, secret_key: str, clock: Clock) -> None:
        self.codes = RecoveryCodeRepository(db)
        self.users = UserRepository(db)
        self.secret_key = secret_key
        self.clock = clock

    async def begin_enrolment(self, user: User) -> Enrolment:
        """A pending secret (kept across page loads, so a scanned code stays valid)."""
        if user.email_verified_at is None:
            raise AccountRefused(
                "Confirm your e-mail address first: open the link we sent you, or ask for a "
                "new one on this page."
            )
        if user.totp_enabled_at is not None:
            raise AccountRefused("Two-step sign-in is already on for this account.")
        if user.totp_secret is None:
            user.totp_secret = totp.new_secret()
        uri = totp.provisioning_uri(user.totp_secret, user.email)
        return Enrolment(user.totp_secret, uri, totp.qr_svg(uri))

    async def confirm(self, user: User, code: str) -> list[str]:
        """Turn TOTP on once the app proves it has the secret; returns the recovery codes."""
        enrolment = await self.begin_enrolment(user)
        step = totp.matching_step(enrolment.secret, code, self.clock.now())
        if step is None:
            raise AccountRefused(
                "That code does not match. Scan the QR code again (or type the secret), then "
                "enter the 6-digit code your app shows now.",
                field="code",
            )
        user.totp_enabled_at = self.clock.now()
        user.totp_last_step = step
        return await self._new_codes(user)

    async def regenerate_codes(self, user: User, code: str) -> list[str]:
        """New recovery codes (the old ones stop working); needs a current TOTP code."""
        if user.totp_enabled_at is None:
            raise AccountRefused("Turn on two-step sign-in first.")
        problem = await self.check_totp(user, code)
        if problem is not None:
            raise AccountRefused(problem, field="code")
        return await self._new_codes(user)

    async def unused_codes(self, user: User) -> int:
        return await self.codes.unused_count(user.id)

    async def verify(self, user: User, code: str) -> str | None:
        """Check a TOTP code or a recovery code (each usable once); None, or why refused."""
        if totp.looks_like_totp(code):
            return await self.check_totp(user, code)
        normalized = totp.normalize_recovery_code(code)
        if normalized and await self.codes.claim(
            user.id, hmac_hash(self.secret_key, normalized), self.clock.now()
        ):
            return None
        return WRONG_CODE

    async def check_totp(self, user: User, code: str) -> str | None:
        """A current code from a later step than the last accepted one (RFC 6238 §5.2)."""
        if user.totp_secret is None or user.totp_enabled_at is None:
            return WRONG_CODE
        step = totp.matching_step(user.totp_secret, code, self.clock.now())
        if step is None:
            return WRONG_CODE
        # Atomic, so two requests racing with one code cannot both pass.
        if not await self.users.advance_totp_step(user.id, step):
            return REPLAYED_CODE
        return None

    async def _new_codes(self, user: User) -> list[str]:
        codes = totp.new_recovery_codes()
        hashes = [hmac_hash(self.secret_key, totp.normalize_recovery_code(c)) for c in codes]
        await self.codes.replace(user.id, hashes)
        return codes
