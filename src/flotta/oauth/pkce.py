"""RFC 7636 PKCE, S256 only: `plain` would let a stolen code be redeemed (RFC 9700 §2.1.1)."""

from __future__ import annotations

import hmac
import re

from authlib.oauth2.rfc7636 import create_s256_code_challenge  # type: ignore[import-untyped]

S256 = "S256"
# §4.1: 43-128 unreserved characters; §4.2: BASE64URL(SHA256) is always 43 characters.
VERIFIER = re.compile(r"[A-Za-z0-9\-._~]{43,128}")
S256_CHALLENGE = re.compile(r"[A-Za-z0-9_-]{43}")


def s256_challenge(verifier: str) -> str:
    """BASE64URL-ENCODE(SHA256(ASCII(code_verifier))), RFC 7636 §4.2."""
    return str(create_s256_code_challenge(verifier))


def verifier_matches(verifier: str, challenge: str) -> bool:
    """RFC 7636 §4.6: only a well-formed verifier whose S256 digest is the challenge."""
    if not VERIFIER.fullmatch(verifier):
        return False
    return hmac.compare_digest(s256_challenge(verifier), challenge)
