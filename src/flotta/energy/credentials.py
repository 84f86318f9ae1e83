"""Energy-site gateway credentials: prefixed, random, stored only as HMAC-SHA256."""

from __future__ import annotations

import secrets

from flotta.devices.credentials import hash_credential

PREFIX = "fes_"


def new_site_credential(site_id: int) -> str:
    """A credential naming its site, so the gateway finds the record before checking it."""
    return f"{PREFIX}{site_id}_{secrets.token_urlsafe(24)}"


def site_of(credential: str) -> int | None:
    if not credential.startswith(PREFIX):
        return None
    site, sep, secret = credential[len(PREFIX) :].partition("_")
    if not sep or not secret or not site.isdigit() or len(site) > 19:
        return None
    return int(site)


def site_credential_hash(secret_key: str, credential: str) -> str:
    return hash_credential(secret_key, credential)
