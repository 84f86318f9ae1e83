"""Second factor: RFC 6238 TOTP (30 s steps, 6 digits, ±1 step) and single-use recovery codes."""

from __future__ import annotations

import hmac
import re
import secrets
from datetime import datetime

import pyotp
import segno

ISSUER = "Flotta"
STEP_S = 30
DIGITS = 6
# RFC 6238 §5.2: accept one step either side for clock drift and typing time.
WINDOW = 1
RECOVERY_CODE_COUNT = 10
# Lower-case letters and digits without look-alikes (0/o, 1/l/i): easy to read off paper.
_RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"
_RECOVERY_GROUP = 5

_CODE = re.compile(r"^\d{6}$")


def new_secret() -> str:
    """A fresh base32 secret of 160 bits (RFC 4226 §4 recommends at least that)."""
    return pyotp.random_base32(length=32)


def time_step(now: datetime) -> int:
    """The RFC 6238 counter T for an aware datetime."""
    return int(now.timestamp()) // STEP_S


def provisioning_uri(secret: str, email: str) -> str:
    """The `otpauth://totp/…` URI authenticator apps read from the QR code."""
    return pyotp.TOTP(secret, digits=DIGITS, interval=STEP_S).provisioning_uri(
        name=email, issuer_name=ISSUER
    )


def qr_svg(uri: str) -> str:
    """The URI as an inline SVG QR code, labelled for screen readers."""
    svg = segno.make(uri, error="m").svg_inline(scale=5, border=4, svgclass="qr")
    return svg.replace(
        "<svg ", '<svg role="img" aria-label="QR code for your authenticator app" ', 1
    )


def looks_like_totp(code: str) -> bool:
    return bool(_CODE.match(normalize_totp(code)))


def normalize_totp(code: str) -> str:
    """Apps show codes as "123 456"; accept that as typed."""
    return re.sub(r"[\s-]", "", code)


def matching_step(secret: str, code: str, now: datetime) -> int | None:
    """The time step (within ±WINDOW of now) whose code equals `code`, or None."""
    typed = normalize_totp(code)
    if not _CODE.match(typed):
        return None
    totp = pyotp.TOTP(secret, digits=DIGITS, interval=STEP_S)
    current = time_step(now)
    found: int | None = None
    # Compare every candidate (no early exit), so timing says nothing about which one matched.
    for step in range(current - WINDOW, current + WINDOW + 1):
        if hmac.compare_digest(totp.generate_otp(step), typed):
            found = step
    return found


def new_recovery_codes(count: int = RECOVERY_CODE_COUNT) -> list[str]:
    """Codes like `k7mq2-xp4ta` (about 49 bits each), shown once and stored hashed."""
    codes = []
    for _ in range(count):
        raw = "".join(secrets.choice(_RECOVERY_ALPHABET) for _ in range(2 * _RECOVERY_GROUP))
        codes.append(f"{raw[:_RECOVERY_GROUP]}-{raw[_RECOVERY_GROUP:]}")
    return codes


def normalize_recovery_code(code: str) -> str:
    """What is hashed: lower case, without the dash or spaces people type."""
    return re.sub(r"[\s-]", "", code).lower()
