"""Verify `Tesla.SS256` JWS tokens: Schnorr over P-256/SHA-256 (fleet-api.md §9.1).

What `tesla-http-proxy` signs for `fleet_telemetry_config_jws` (vehicle-command
`internal/schnorr`): a 96-byte signature `Vx ‖ Vy ‖ r` with challenge
`c = SHA-256(LV(G) ‖ LV(V) ‖ LV(A) ‖ LV(signing input))`, valid when `V == c·A + r·G`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import struct
from dataclasses import dataclass
from typing import Any

import orjson
from cryptography.hazmat.primitives.asymmetric import ec

from flotta.errors import FlottaError, InvalidRequest
from flotta.telemetry.checks import kind

ALGORITHM = "Tesla.SS256"
FLEET_AUDIENCE = "com.tesla.fleet.TelemetryClient"
SIGNATURE_BYTES = 96
MAX_TOKEN_CHARS = 200_000

# NIST P-256 (SEC 2 §2.4.2): y² = x³ - 3x + b over GF(p), generator G of prime order N.
P = 0xFFFFFFFF00000001000000000000000000000000FFFFFFFFFFFFFFFFFFFFFFFF
N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
GX = 0x6B17D1F2E12C4247F8BCE6E563A440F277037D812DEB33A0F4A13945D898C296
GY = 0x4FE342E2FE1A7F9B8EE7EB4A7C0F9E162BCE33576B315ECECBB6406837BF51F5

Point = tuple[int, int] | None
"""An affine point; None is the point at infinity."""


class TokenRefused(FlottaError):
    """The token's signature or claims do not hold: it is not from the app's key. A 400, not
    a 401: clients take a 401 for a bad access token, and may refresh it or sign the user
    out, while the access token is fine and the config's signature is what failed."""

    status = 400
    key = "invalid_request"


@dataclass(frozen=True, slots=True)
class VerifiedToken:
    """A token whose signature verified: its claims and the signer's 65-byte public key."""

    claims: dict[str, Any]
    public_key: bytes


def encode_point(point: tuple[int, int]) -> bytes:
    """Uncompressed SEC 1 form: 0x04 ‖ X ‖ Y."""
    return b"\x04" + point[0].to_bytes(32, "big") + point[1].to_bytes(32, "big")


def decode_point(data: bytes) -> tuple[int, int]:
    """A P-256 point from its uncompressed form; ValueError when it is not on the curve."""
    key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), data)
    numbers = key.public_numbers()
    return numbers.x, numbers.y


G_BYTES = encode_point((GX, GY))


def add(a: Point, b: Point) -> Point:
    """Point addition in affine coordinates (Fermat inversion: few points per token)."""
    if a is None:
        return b
    if b is None:
        return a
    (x1, y1), (x2, y2) = a, b
    if x1 == x2 and (y1 + y2) % P == 0:
        return None
    if a == b:
        slope = (3 * x1 * x1 - 3) * pow(2 * y1, P - 2, P) % P
    else:
        slope = (y2 - y1) * pow(x2 - x1, P - 2, P) % P
    x3 = (slope * slope - x1 - x2) % P
    return x3, (slope * (x1 - x3) - y1) % P


def multiply(k: int, point: Point) -> Point:
    """k·point by double-and-add (verification handles public data only)."""
    result: Point = None
    addend = point
    k %= N
    while k:
        if k & 1:
            result = add(result, addend)
        addend = add(addend, addend)
        k >>= 1
    return result


def _lv(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


def challenge(nonce_point: bytes, public_key: bytes, message: bytes) -> int:
    """c = SHA-256(LV(G) ‖ LV(V) ‖ LV(A) ‖ LV(message)) as an integer."""
    digest = hashlib.sha256(
        _lv(G_BYTES) + _lv(nonce_point) + _lv(public_key) + _lv(message)
    ).digest()
    return int.from_bytes(digest, "big")


def verify_signature(public_key: bytes, message: bytes, signature: bytes) -> bool:
    """Whether `signature` (Vx ‖ Vy ‖ r) is the key's Schnorr signature of `message`."""
    if len(signature) != SIGNATURE_BYTES:
        return False
    nonce_bytes = b"\x04" + signature[:64]
    r = int.from_bytes(signature[64:], "big")
    if r >= N:
        return False
    try:
        nonce, signer = decode_point(nonce_bytes), decode_point(public_key)
    except ValueError:
        return False
    c = challenge(nonce_bytes, public_key, message)
    return add(multiply(c, signer), multiply(r, (GX, GY))) == nonce


def _b64url(part: str, what: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
    except (binascii.Error, ValueError) as exc:
        raise InvalidRequest(f"token: the {what} is not base64url") from exc


def _json_object(raw: bytes, what: str) -> dict[str, Any]:
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(f"token: the {what} is not JSON") from exc
    if not isinstance(value, dict):
        raise InvalidRequest(f"token: the {what} must be a JSON object")
    return value


def parse_token(token: object) -> tuple[dict[str, Any], dict[str, Any], bytes, bytes]:
    """Split a compact JWS: header, claims, signing input and signature (400 if malformed)."""
    if token is None or token == "":
        raise InvalidRequest('token is required: the compact JWS "<header>.<claims>.<signature>"')
    if not isinstance(token, str):
        raise InvalidRequest(
            'token must be a string, the compact JWS "<header>.<claims>.<signature>", not '
            f"{kind(token)}"
        )
    if len(token) > MAX_TOKEN_CHARS:
        raise InvalidRequest(f"token exceeds {MAX_TOKEN_CHARS} characters")
    parts = token.split(".")
    if len(parts) != 3:
        raise InvalidRequest(
            f"token must be a compact JWS with 3 dot-separated parts, not {len(parts)}"
        )
    header = _json_object(_b64url(parts[0], "header"), "header")
    claims = _json_object(_b64url(parts[1], "claims part"), "claims part")
    signature = _b64url(parts[2], "signature")
    return header, claims, f"{parts[0]}.{parts[1]}".encode("ascii"), signature


def verify_token(token: object, registered_key_hex: str | None) -> VerifiedToken:
    """Verify a `fleet_telemetry_config_jws` token against the app's registered key.

    400 for a malformed token or the wrong algorithm; 401 when the signature, issuer or
    audience does not hold. Returns the claims (still to be validated as a config).
    """
    header, claims, signing_input, signature = parse_token(token)
    if header.get("alg") != ALGORITHM:
        raise InvalidRequest(
            f"token: alg must be {ALGORITHM} (Schnorr over P-256, as tesla-http-proxy signs), "
            f"not {header.get('alg')!r}"
        )
    if registered_key_hex is None:
        raise TokenRefused(
            "this app has no registered public key: register it with POST "
            "/api/1/partner_accounts (or upload it in the portal) before signing configs"
        )
    registered = bytes.fromhex(registered_key_hex)
    _check_issuer(claims.get("iss"), registered)
    audience = claims.get("aud")
    if audience != FLEET_AUDIENCE:
        raise TokenRefused(f"token: aud must be {FLEET_AUDIENCE!r}, not {audience!r}")
    if len(signature) != SIGNATURE_BYTES:
        raise TokenRefused(
            f"token: a {ALGORITHM} signature is {SIGNATURE_BYTES} bytes, not {len(signature)}"
        )
    if not verify_signature(registered, signing_input, signature):
        raise TokenRefused(
            "token: the signature does not verify with the app's registered public key "
            "(was the token altered, or signed with another key?)"
        )
    return VerifiedToken(claims, registered)


def _check_issuer(issuer: object, registered: bytes) -> None:
    """`iss` is the signer's public key in standard base64; it must be the app's key."""
    if not isinstance(issuer, str):
        raise TokenRefused("token: iss is required (base64 of the app's public key)")
    try:
        presented = base64.b64decode(issuer, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise TokenRefused("token: iss is not standard base64") from exc
    if presented != registered:
        raise TokenRefused(
            "token: iss is not this app's registered public key; sign with the private key "
            "whose public half partner_accounts serves"
        )
