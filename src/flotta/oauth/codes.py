"""Authorization codes (RFC 6749 §4.1.2): issued by the consent page, redeemed once at /token.

A code is region-prefixed like Tesla's (`NA_…`), stored only as its HMAC, lives ten minutes and
is bound to its client, user, redirect_uri, scopes, PKCE challenge and nonce.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from flotta.clock import Clock
from flotta.oauth.errors import InvalidAuthCode, InvalidRedirectUrl, OAuthError
from flotta.oauth.models import AuthorizationCode, OAuthClient
from flotta.oauth.pkce import verifier_matches
from flotta.oauth.repository import OAuthRepository
from flotta.oauth.service import hmac_hash

CODE_TTL_S = 600
# RefreshFamily.revoked_reason when a code is presented a second time (RFC 6749 §4.1.2).
CODE_REUSED = "code_reuse"


@dataclass(frozen=True, slots=True)
class CodeRefusal:
    """A refused exchange whose side effects (a revoked family) must be committed first."""

    error: OAuthError


@dataclass(frozen=True, slots=True)
class CodeRequest:
    """What the consent decision binds a code to."""

    client: OAuthClient
    user_id: int
    redirect_uri: str
    scopes: list[str]
    code_challenge: str | None
    nonce: str | None


class CodeService:
    """Issue and redeem codes over one session; never commits."""

    def __init__(
        self, session: AsyncSession, *, secret_key: str, clock: Clock, region: str
    ) -> None:
        self.repo = OAuthRepository(session)
        self.secret_key = secret_key
        self.clock = clock
        self.region = region

    async def issue(self, request: CodeRequest) -> str:
        """A new single-use code; only its HMAC is stored."""
        code = f"{self.region.upper()}_{secrets.token_hex(32)}"
        now = self.clock.now()
        await self.repo.add(
            AuthorizationCode(
                code_hash=hmac_hash(self.secret_key, code),
                client_pk=request.client.id,
                user_id=request.user_id,
                redirect_uri=request.redirect_uri,
                scopes=list(request.scopes),
                code_challenge=request.code_challenge,
                nonce=request.nonce,
                created_at=now,
                expires_at=now + timedelta(seconds=CODE_TTL_S),
            )
        )
        return code

    async def redeem(
        self, client: OAuthClient, code: str, *, redirect_uri: str, verifier: str | None
    ) -> AuthorizationCode | CodeRefusal:
        """RFC 6749 §4.1.3 and RFC 7636 §4.6; a second use revokes what the first one issued."""
        now = self.clock.now()
        row = await self.repo.code_by_hash(hmac_hash(self.secret_key, code))
        if row is None or row.client_pk != client.id:
            raise InvalidAuthCode("unknown authorization code for this client_id")
        if row.used_at is not None:
            return await self._reused(row)
        if row.expires_at <= now:
            raise InvalidAuthCode("the authorization code has expired; authorize again")
        if row.redirect_uri != redirect_uri:
            raise InvalidRedirectUrl("redirect_uri must be the one sent to /oauth2/v3/authorize")
        _check_pkce(row.code_challenge, verifier)
        if not await self.repo.claim_code(row.id, now):
            return await self._reused(row)
        return row

    async def bind_family(self, row: AuthorizationCode, family_id: int) -> None:
        """Remember what the exchange issued, so a replay can revoke it."""
        row.family_id = family_id
        await self.repo.session.flush()

    async def _reused(self, row: AuthorizationCode) -> CodeRefusal:
        await self.repo.session.refresh(row)  # a concurrent exchange may have bound its family
        if row.family_id is not None:
            await self.repo.revoke_family(row.family_id, self.clock.now(), CODE_REUSED)
        return CodeRefusal(
            InvalidAuthCode(
                "the authorization code was already used; the tokens issued for it are revoked"
            )
        )


def _check_pkce(challenge: str | None, verifier: str | None) -> None:
    """PKCE cannot be downgraded: a challenge needs its verifier, no challenge allows none."""
    if challenge is None:
        if verifier is not None:
            raise InvalidAuthCode(
                "code_verifier sent, but the authorization request had no code_challenge"
            )
        return
    if verifier is None:
        raise InvalidAuthCode("missing code_verifier param (the authorization used PKCE)")
    if not verifier_matches(verifier, challenge):
        raise InvalidAuthCode("code_verifier does not match the code_challenge")
