"""Parsing the command key: only a P-256 public key PEM is accepted, stored as 04… hex."""

from __future__ import annotations

import pytest

from flotta.apps.public_key import InvalidPublicKey, fingerprint, public_key_hex
from tests.apps.keys import p256_pair, p256_private_pem, p384_pem, rsa_pem


def test_p256_public_key_becomes_the_uncompressed_point() -> None:
    pem, expected = p256_pair()
    point = public_key_hex(pem)
    assert point == expected
    assert len(point) == 130 and point.startswith("04")
    # Stable and readable: 64 hex digits of SHA-256 in groups of four.
    assert fingerprint(point) == fingerprint(expected)
    assert len(fingerprint(point).split()) == 16


@pytest.mark.parametrize(
    ("text", "says"),
    [
        (p384_pem(), "secp384r1"),
        (rsa_pem(), "EC key on secp256r1"),
        (p256_private_pem(), "private key"),
        ("hello", "-----BEGIN PUBLIC KEY-----"),
        ("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n", "not a PEM public key"),
        ("x" * 5000, "too large"),
    ],
)
def test_anything_else_is_refused_with_a_reason(text: str, says: str) -> None:
    with pytest.raises(InvalidPublicKey) as refused:
        public_key_hex(text)
    assert says in str(refused.value)
