"""Portal accounts: sign-up, e-mail verification, sign-in with lockout, MFA step, password reset.

Never commits: the request owns the unit of work. Outcomes that must persist even when the
user is refused (a counted failure, a lock) are returned, not raised, so the caller commits.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum

from sqlalchemy.ext.asyncio import AsyncSession

from flotta.accounts import mails
from flotta.accounts.errors import AccountRefused
from flotta.accounts.mfa import MfaService
from flotta.accounts.models import AccountToken, User
from flotta.accounts.passwords import Passwords, password_problem
from flotta.accounts.repository import AccountTokenRepository, UserRepository
from flotta.accounts.sessions import SessionService
from flotta.clock import Clock
from flotta.mail.service import queue_mail
from flotta.oauth.service import hmac_hash

VERIFY = "verify_email"
RESET = "reset_password"
VERIFY_PREFIX = "fev_"
RESET_PREFIX = "frs_"
VERIFY_TTL = timedelta(hours=24)
RESET_TTL = timedelta(hours=1)
# At most one new link per minute per account: enough for a lost mail, useless for spamming.
LINK_INTERVAL = timedelta(minutes=1)
LOCK_AFTER = 5
FIRST_LOCK_S = 60
MAX_LOCK_S = 24 * 3600
WRONG_PASSWORD = "The e-mail address or the password is wrong."

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class LinkState(Enum):
    VALID = "valid"
    USED = "used"
    EXPIRED = "expired"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class SignIn:
    """A sign-in attempt: `user` when the step passed; `error` (and perhaps a lock) otherwise."""

    user: User | None = None
    needs_mfa: bool = False
    error: str | None = None


def normalize_email(value: str) -> str:
    """Lower-cased and trimmed; refuses what cannot be an address."""
    email = value.strip().lower()
    if len(email) > 320 or not _EMAIL.match(email):
        raise AccountRefused("Enter an e-mail address such as name@example.com.", field="email")
    return email


def lock_message(until: datetime) -> str:
    return (
        f"Too many failed attempts: sign-in to this account is locked until "
        f"{until:%Y-%m-%d %H:%M:%S} UTC. Try again then, or reset your password to unlock it now."
    )


class AccountService:
    """The account flows of the portal over one database session."""

    def __init__(
        self,
        db: AsyncSession,
        *,
        secret_key: str,
        clock: Clock,
        portal_url: str,
        sessions: SessionService,
        passwords: Passwords | None = None,
    ) -> None:
        self.db = db
        self.users = UserRepository(db)
        self.links = AccountTokenRepository(db)
        self.mfa = MfaService(db, secret_key=secret_key, clock=clock)
        self.sessions = sessions
        self.secret_key = secret_key
        self.clock = clock
        self.portal_url = portal_url.rstrip("/")
        self.passwords = passwords or Passwords()

    async def sign_up(self, email: str, full_name: str, password: str) -> User | None:
        """A new account with a verification mail; None when the address is taken (then the
        owner of the address gets a note instead, and the caller answers the same)."""
        address = normalize_email(email)
        name = full_name.strip()
        if not name or len(name) > 200 or any(ch < " " or ch == "\x7f" for ch in name):
            raise AccountRefused(
                "Enter your name on one line (at most 200 characters).", field="full_name"
            )
        problem = password_problem(password)
        if problem is not None:
            raise AccountRefused(problem, field="password")
        password_hash = await self.passwords.hash_async(password)  # same cost either way
        if await self.users.by_email(address) is not None:
            await self.note_taken(address)
            return None
        # A concurrent sign-up for the same address fails this flush with IntegrityError: the
        # caller rolls back and sends `note_taken` instead.
        user = await self.users.add(
            User(
                email=address,
                full_name=name,
                created_at=self.clock.now(),
                password_hash=password_hash,
            )
        )
        await self._send_verification(user)
        return user

    async def note_taken(self, address: str) -> None:
        """Tell the owner of an address that someone tried to sign up with it."""
        await self._mail(address, mails.already_registered(self.portal_url))

    async def verify_email(self, token: str) -> tuple[LinkState, User | None]:
        """Use a verification link once; VALID means the address is now verified."""
        state, row = await self._link(VERIFY, VERIFY_PREFIX, token)
        if row is None or state is not LinkState.VALID:
            return state, None
        if not await self.links.claim(row.id, self.clock.now()):
            return LinkState.USED, None
        user = await self.users.get(row.user_id)
        if user is not None and user.email_verified_at is None:
            user.email_verified_at = self.clock.now()
        return LinkState.VALID, user

    async def resend_verification(self, user: User) -> None:
        """A new verification link (at most one a minute)."""
        if user.email_verified_at is not None:
            raise AccountRefused("Your address is already confirmed.")
        if await self._sent_recently(user, VERIFY):
            raise AccountRefused(
                "We sent a link less than a minute ago. Check your mail (and its spam folder), "
                "or try again in a minute."
            )
        await self._send_verification(user)

    async def sign_in(self, email: str, password: str) -> SignIn:
        """Check the password; an unknown address costs the same argon2 work as a known one."""
        user = await self.users.by_email(email.strip().lower())
        if user is None or user.password_hash is None:
            await self.passwords.verify_async(None, password)
            return SignIn(error=WRONG_PASSWORD)
        locked = self._locked_until(user)
        if locked is not None:
            return SignIn(error=lock_message(locked))
        if not await self.passwords.verify_async(user.password_hash, password):
            return SignIn(error=await self._count_failure(user, WRONG_PASSWORD))
        if self.passwords.needs_rehash(user.password_hash):
            user.password_hash = await self.passwords.hash_async(password)
        if user.totp_enabled_at is not None:
            # The counter is reset only after the second factor, so a known password does not
            # buy fresh guesses at the code.
            return SignIn(user=user, needs_mfa=True)
        self._clear_failures(user)
        return SignIn(user=user)

    async def finish_mfa(self, user: User, code: str) -> SignIn:
        """The second step: a TOTP code or a recovery code; failures count towards the lock."""
        locked = self._locked_until(user)
        if locked is not None:
            return SignIn(error=lock_message(locked))
        problem = await self.mfa.verify(user, code)
        if problem is not None:
            return SignIn(error=await self._count_failure(user, problem))
        self._clear_failures(user)
        return SignIn(user=user)

    async def request_reset(self, email: str) -> None:
        """Mail a reset link if the account exists; the caller answers the same either way."""
        try:
            address = normalize_email(email)
        except AccountRefused:
            return
        user = await self.users.by_email(address)
        if user is None or await self._sent_recently(user, RESET):
            return
        link = await self._new_link(user, RESET, RESET_PREFIX, RESET_TTL)
        await self._mail(user.email, mails.reset_password(user.full_name, f"{link}"))

    async def reset_link_state(self, token: str) -> LinkState:
        state, _ = await self._link(RESET, RESET_PREFIX, token)
        return state

    async def reset_password(self, token: str, password: str) -> User:
        """Set a new password through a reset link: unlock, sign out everywhere, revoke apps."""
        problem = password_problem(password)
        if problem is not None:
            raise AccountRefused(problem, field="password")
        state, row = await self._link(RESET, RESET_PREFIX, token)
        now = self.clock.now()
        if row is None or state is not LinkState.VALID or not await self.links.claim(row.id, now):
            raise AccountRefused(
                "This reset link has expired or was already used. Ask for a new one."
            )
        user = await self.users.get(row.user_id)
        if user is None:
            raise AccountRefused("This account no longer exists.")
        # Following the link proved the mailbox is theirs.
        user.email_verified_at = user.email_verified_at or now
        await self._set_password(user, password, now)
        return user

    async def change_password(self, user: User, current: str, password: str) -> None:
        """Set a new password from the signed-in account page, which asks for the current one:
        a borrowed session alone cannot take the account over. A wrong current password counts
        towards the lock, as at sign-in."""
        locked = self._locked_until(user)
        if locked is not None:
            raise AccountRefused(lock_message(locked), field="current")
        if user.password_hash is None or not await self.passwords.verify_async(
            user.password_hash, current
        ):
            message = await self._count_failure(user, "The current password is not right.")
            raise AccountRefused(message, field="current")
        problem = password_problem(password)
        if problem is not None:
            raise AccountRefused(problem, field="password")
        await self._set_password(user, password, self.clock.now())

    async def _set_password(self, user: User, password: str, now: datetime) -> None:
        """The new password, then as after any change: unlocked, reset links retired, signed
        out everywhere, the apps' codes and refresh tokens revoked, and a notice mailed."""
        user.password_hash = await self.passwords.hash_async(password)
        user.credentials_changed_at = now
        self._clear_failures(user)
        await self.links.retire_all(user.id, RESET, now)
        await self.sessions.end_all(user.id)
        await self.users.expire_codes(user.id, now)
        await self.users.revoke_refresh_families(user.id, now, "password_changed")
        await self._mail(user.email, mails.password_changed(user.full_name, self.portal_url))

    def _locked_until(self, user: User) -> datetime | None:
        until = user.locked_until
        return until if until is not None and until > self.clock.now() else None

    async def _count_failure(self, user: User, message: str) -> str:
        """Count a failure; from the fifth on, lock for 1 min doubling per failure (≤ 24 h)."""
        failures = await self.users.count_failure(user.id)
        if failures < LOCK_AFTER:
            return message
        seconds = min(FIRST_LOCK_S * 2 ** min(failures - LOCK_AFTER, 20), MAX_LOCK_S)
        user.locked_until = self.clock.now() + timedelta(seconds=seconds)
        return f"{message} {lock_message(user.locked_until)}"

    def _clear_failures(self, user: User) -> None:
        user.failed_logins = 0
        user.locked_until = None

    async def _send_verification(self, user: User) -> None:
        link = await self._new_link(user, VERIFY, VERIFY_PREFIX, VERIFY_TTL)
        await self._mail(user.email, mails.verify_address(user.full_name, user.email, link))

    async def _new_link(self, user: User, purpose: str, prefix: str, ttl: timedelta) -> str:
        """Store a one-time token (hashed) and return the portal URL carrying it."""
        token = f"{prefix}{secrets.token_urlsafe(32)}"
        now = self.clock.now()
        await self.links.add(
            AccountToken(
                user_id=user.id,
                purpose=purpose,
                token_hash=hmac_hash(self.secret_key, token),
                created_at=now,
                expires_at=now + ttl,
            )
        )
        page = "verify" if purpose == VERIFY else "reset"
        return f"{self.portal_url}/{page}?token={token}"

    async def _link(
        self, purpose: str, prefix: str, token: str
    ) -> tuple[LinkState, AccountToken | None]:
        if not token.startswith(prefix) or len(token) > 128:
            return LinkState.UNKNOWN, None
        row = await self.links.by_hash(purpose, hmac_hash(self.secret_key, token))
        if row is None:
            return LinkState.UNKNOWN, None
        if row.used_at is not None:
            return LinkState.USED, row
        if row.expires_at <= self.clock.now():
            return LinkState.EXPIRED, row
        return LinkState.VALID, row

    async def _sent_recently(self, user: User, purpose: str) -> bool:
        since = self.clock.now() - LINK_INTERVAL
        return await self.links.issued_since(user.id, purpose, since) > 0

    async def _mail(self, to: str, mail: mails.Mail) -> None:
        await queue_mail(self.db, self.clock, to=to, subject=mail.subject, body=mail.body)
