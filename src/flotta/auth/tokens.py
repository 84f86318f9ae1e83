"""Access tokens: ES256 JWTs carrying the claims Tesla's clients read (scp, ou_code, aud, sub)."""

from __future__ import annotations

import secrets
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey

from flotta.auth.scopes import KNOWN_SCOPES
from flotta.clock import Clock
from flotta.errors import Unauthorized


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the account behind the token and what it may do."""

    subject: str
    scopes: frozenset[str]
    client_id: str
    expires_at: int
    partner: bool = False
    # Fleet ids a third-party app may reach (its consent grant); None: every vehicle of the account.
    devices: frozenset[int] | None = None


def bearer_token(header: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header; None for any other value."""
    scheme, _, token = (header or "").partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


def load_or_create_key(path: Path) -> ECKey:
    """Load the P-256 signing key, creating it (0600) on first start."""
    if path.exists():
        return ECKey.import_key(path.read_text())
    path.parent.mkdir(parents=True, exist_ok=True)
    key = ECKey.generate_key("P-256", parameters={"use": "sig", "alg": "ES256"}, private=True)
    pem = key.as_pem(private=True)
    path.touch(mode=0o600)
    path.write_bytes(pem if isinstance(pem, bytes) else pem.encode())
    return key


class TokenService:
    """Mints and verifies access tokens; verification results are cached until expiry."""

    def __init__(
        self, key: ECKey, *, issuer: str, audience: str, region: str, ttl_s: int, clock: Clock
    ) -> None:
        self.key = key
        self.issuer = issuer
        self.audience = audience
        self.region = region
        self.ttl_s = ttl_s
        self.clock = clock
        self._cache: OrderedDict[str, Principal] = OrderedDict()
        self._cache_size = 10_000

    def mint(
        self,
        subject: str,
        scopes: list[str],
        *,
        client_id: str = "flotta-cli",
        ttl_s: int | None = None,
        partner: bool = False,
        audience: str | None = None,
    ) -> str:
        """An access token; `audience` (a partner token's requested base URL) joins `aud`."""
        unknown = sorted(set(scopes) - KNOWN_SCOPES)
        if unknown:
            raise ValueError(f"unknown scopes: {', '.join(unknown)}")
        now = int(self.clock.now().timestamp())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "azp": client_id,
            "sub": subject,
            "aud": _audiences(self.audience, audience, self.issuer),
            "scp": list(scopes),
            "amr": ["pwd"],
            "iat": now,
            "exp": now + (ttl_s or self.ttl_s),
            "ou_code": self.region.upper(),
            "locale": "en-US",
            "jti": secrets.token_hex(8),
        }
        if partner:
            claims["token_type"] = "partner"
        header = {"alg": "ES256", "typ": "JWT", "kid": self.key.thumbprint()}
        return jwt.encode(header, claims, self.key)

    def mint_id_token(
        self,
        subject: str,
        *,
        client_id: str,
        email: str | None,
        ttl_s: int,
        nonce: str | None = None,
    ) -> str:
        """An OpenID Connect id_token (ES256, same key) for `client_id`; echoes the `nonce`."""
        now = int(self.clock.now().timestamp())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "sub": subject,
            "aud": client_id,
            "iat": now,
            "exp": now + ttl_s,
            "auth_time": now,
        }
        if nonce is not None:
            claims["nonce"] = nonce
        if email is not None:
            claims["email"] = email
            claims["email_verified"] = True
        header = {"alg": "ES256", "typ": "JWT", "kid": self.key.thumbprint()}
        return jwt.encode(header, claims, self.key)

    def public_jwks(self) -> dict[str, Any]:
        """The verification key as a JWK Set (the private part never leaves)."""
        public = self.key.as_dict(private=False)
        return {"keys": [{**public, "kid": self.key.thumbprint(), "use": "sig", "alg": "ES256"}]}

    def verify(self, token: str) -> Principal:
        """Check signature, issuer and expiry; raise Tesla's 401 on any failure."""
        now = int(self.clock.now().timestamp())
        cached = self._cache.get(token)
        if cached is not None:
            if cached.expires_at <= now:
                self._cache.pop(token, None)
                raise Unauthorized(key="token expired (401)")
            return cached
        principal = self._decode(token, now)
        self._cache[token] = principal
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return principal

    def _decode(self, token: str, now: int) -> Principal:
        try:
            decoded = jwt.decode(token, self.key, algorithms=["ES256"])
        except (JoseError, ValueError) as exc:
            raise Unauthorized("the access token is malformed or its signature is invalid") from exc
        claims = decoded.claims
        exp = claims.get("exp")
        if not isinstance(exp, int):
            raise Unauthorized("the access token has no expiry")
        if exp <= now:
            raise Unauthorized(key="token expired (401)")
        if claims.get("iss") != self.issuer:
            raise Unauthorized("the access token was issued by someone else")
        scp = claims.get("scp")
        sub = claims.get("sub")
        if not isinstance(scp, list) or not isinstance(sub, str):
            raise Unauthorized("the access token lacks sub or scp")
        return Principal(
            subject=sub,
            scopes=frozenset(str(s) for s in scp),
            client_id=str(claims.get("azp", "")),
            expires_at=exp,
            partner=claims.get("token_type") == "partner",
        )


def _audiences(base: str, requested: str | None, issuer: str) -> list[str]:
    audiences = [base, f"{issuer.rstrip('/')}/userinfo"]
    if requested and requested.rstrip("/") != base.rstrip("/"):
        audiences.insert(0, requested.rstrip("/"))
    return audiences
