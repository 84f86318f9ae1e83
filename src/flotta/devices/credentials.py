"""Per-device credentials: prefixed, random, stored only as HMAC-SHA256."""

from __future__ import annotations

import hashlib
import hmac
import secrets

PREFIX = "fdc_"


def new_credential(vin: str) -> str:
    """A credential that names its VIN, so the gateway can find the record before checking it."""
    return f"{PREFIX}{vin}_{secrets.token_urlsafe(24)}"


def hash_credential(secret_key: str, credential: str) -> str:
    return hmac.new(secret_key.encode(), credential.encode(), hashlib.sha256).hexdigest()


def vin_of(credential: str) -> str | None:
    """The VIN a well-formed credential names, or None."""
    if not credential.startswith(PREFIX):
        return None
    vin, sep, secret = credential[len(PREFIX) :].partition("_")
    if not sep or len(vin) != 17 or not secret:
        return None
    return vin


def matches(secret_key: str, credential: str, stored_hash: str) -> bool:
    return hmac.compare_digest(hash_credential(secret_key, credential), stored_hash)
