"""Clients and refresh-token families: register, authenticate, issue, rotate, revoke.

Services never commit: callers own the unit of work. A refusal that must persist (a family
revoked on reuse) is returned as `Refusal`, so the caller commits before answering the error.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from flotta.clock import Clock
from flotta.oauth.errors import UNKNOWN_CLIENT, LoginRequired, UnauthorizedClient
from flotta.oauth.models import OAuthClient, RefreshFamily, RefreshToken, as_list
from flotta.oauth.repository import OAuthRepository
from flotta.oauth.scopes import refresh_scopes

SECRET_PREFIX = "fcs_"


def hmac_hash(secret_key: str, value: str) -> str:
    """What is stored for a secret or token: HMAC-SHA256 under the server's secret key."""
    return hmac.new(secret_key.encode(), value.encode(), hashlib.sha256).hexdigest()


def new_refresh_token(region: str) -> str:
    """Region-prefixed, as Tesla's (`NA_…`, reference §1.4)."""
    return f"{region.upper()}_{secrets.token_hex(32)}"


@dataclass(frozen=True, slots=True)
class Rotation:
    """A successful refresh: the new token, its family and the scopes to grant."""

    refresh_token: str
    family: RefreshFamily
    scopes: list[str]


@dataclass(frozen=True, slots=True)
class Refusal:
    error: LoginRequired


@dataclass(frozen=True, slots=True)
class Lifetimes:
    refresh_s: int
    grace_s: int


class OAuthService:
    """Refresh-token rules of reference §2.4 over one session."""

    def __init__(
        self,
        session: AsyncSession,
        *,
        secret_key: str,
        clock: Clock,
        region: str,
        lifetimes: Lifetimes,
    ) -> None:
        self.repo = OAuthRepository(session)
        self.secret_key = secret_key
        self.clock = clock
        self.region = region
        self.lifetimes = lifetimes

    async def register_client(
        self,
        *,
        name: str,
        owner_id: int | None,
        confidential: bool,
        scopes: list[str],
        redirect_uris: list[str] | None = None,
        client_id: str | None = None,
    ) -> tuple[OAuthClient, str | None]:
        """Create an app; return it with its secret (shown once; None for public apps)."""
        secret = f"{SECRET_PREFIX}{secrets.token_urlsafe(32)}" if confidential else None
        client = OAuthClient(
            client_id=client_id or secrets.token_hex(16),
            secret_hash=hmac_hash(self.secret_key, secret) if secret else None,
            name=name,
            owner_id=owner_id,
            client_type="confidential" if confidential else "public",
            redirect_uris=list(redirect_uris or []),
            scopes=list(scopes),
            status="approved",
            created_at=self.clock.now(),
        )
        await self.repo.add(client)
        return client, secret

    async def authenticate(
        self, client_id: str, secret: str | None, *, require_secret: bool = False
    ) -> OAuthClient:
        """The app behind `client_id`; a secret, when given or required, must match."""
        client = await self.repo.client(client_id)
        if client is None or client.status != "approved":
            raise UnauthorizedClient(UNKNOWN_CLIENT)
        if secret is None and not require_secret:
            return client
        if secret is None or client.secret_hash is None:
            raise UnauthorizedClient(UNKNOWN_CLIENT)
        if not hmac.compare_digest(hmac_hash(self.secret_key, secret), client.secret_hash):
            raise UnauthorizedClient(UNKNOWN_CLIENT)
        return client

    async def issue(self, client: OAuthClient, user_id: int, scopes: list[str]) -> str:
        """Start a family (a user's grant to an app) and return its first refresh token."""
        family = RefreshFamily(
            client_pk=client.id, user_id=user_id, scopes=list(scopes), created_at=self.clock.now()
        )
        await self.repo.add(family)
        return await self._mint(family)

    async def refresh(
        self, client: OAuthClient, presented: str, requested: list[str] | None
    ) -> Rotation | Refusal:
        """Exchange a refresh token (single use, 24 h grace for the last used one)."""
        now = self.clock.now()
        row = await self.repo.token_by_hash(hmac_hash(self.secret_key, presented))
        family = await self.repo.family(row.family_id) if row is not None else None
        if row is None or family is None or family.client_pk != client.id:
            return Refusal(LoginRequired("unknown refresh token for this client_id"))
        if family.revoked_at is not None:
            return Refusal(LoginRequired("this refresh token has been revoked"))
        if row.expires_at <= now:
            return Refusal(LoginRequired("this refresh token has expired"))
        scopes = refresh_scopes(as_list(family.scopes), requested)
        if row.used_at is None and row.superseded_at is None:
            if await self.repo.claim(row.id, now):
                return Rotation(await self._mint(family), family, scopes)
            await self.repo.session.refresh(row)  # a concurrent refresh used it just now
        if await self._within_grace(row, family, now):
            await self.repo.supersede_live(family.id, now)
            return Rotation(await self._mint(family), family, scopes)
        self._revoke(family, now, "reuse")
        await self.repo.session.flush()
        return Refusal(LoginRequired("this refresh token was already used; sign in again"))

    async def revoke(self, client: OAuthClient, presented: str) -> bool:
        """RFC 7009: revoke the family of a refresh token this client holds."""
        row = await self.repo.token_by_hash(hmac_hash(self.secret_key, presented))
        family = await self.repo.family(row.family_id) if row is not None else None
        if family is None or family.client_pk != client.id:
            return False
        if family.revoked_at is None:
            self._revoke(family, self.clock.now(), "revoked")
            await self.repo.session.flush()
        return True

    async def _within_grace(self, row: RefreshToken, family: RefreshFamily, now: datetime) -> bool:
        """Only the family's most recently used token, and only for the grace period."""
        if row.used_at is None or now - row.used_at > timedelta(seconds=self.lifetimes.grace_s):
            return False
        used = [t for t in await self.repo.tokens_of(family.id) if t.used_at is not None]
        latest = max(used, key=lambda t: (t.used_at or now, t.id))
        return latest.id == row.id

    def _revoke(self, family: RefreshFamily, now: datetime, reason: str) -> None:
        family.revoked_at = now
        family.revoked_reason = reason

    async def _mint(self, family: RefreshFamily) -> str:
        token = new_refresh_token(self.region)
        now = self.clock.now()
        await self.repo.add(
            RefreshToken(
                family_id=family.id,
                token_hash=hmac_hash(self.secret_key, token),
                created_at=now,
                expires_at=now + timedelta(seconds=self.lifetimes.refresh_s),
            )
        )
        return token
