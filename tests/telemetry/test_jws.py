"""fleet_telemetry_config_jws: Tesla.SS256 tokens verified against the app's registered key."""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from tescmd.crypto.schnorr import _challenge as tescmd_challenge
from tescmd.crypto.schnorr import sign_fleet_telemetry_config

from flotta.errors import InvalidRequest
from flotta.telemetry.schnorr import (
    FLEET_AUDIENCE,
    N,
    TokenRefused,
    challenge,
    verify_signature,
    verify_token,
)
from tests.live import LiveDemo, start_live_demo
from tests.telemetry.streaming_support import (
    api,
    ca_pem,
    config,
    loopback_listener,
    pair_keys,
    set_public_key,
)

JWS = "/api/1/vehicles/fleet_telemetry_config_jws"


def public_bytes(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def schnorr_sign(key: ec.EllipticCurvePrivateKey, message: bytes) -> bytes:
    """Test-only signer: V = v·G, c = challenge(V, A, m), r = v - a·c (mod n)."""
    nonce = ec.derive_private_key(secrets.randbelow(N - 1) + 1, ec.SECP256R1())
    nonce_point = public_bytes(nonce)
    c = challenge(nonce_point, public_bytes(key), message)
    r = (nonce.private_numbers().private_value - key.private_numbers().private_value * c) % N
    return nonce_point[1:] + r.to_bytes(32, "big")


def make_token(
    key: ec.EllipticCurvePrivateKey,
    claims: dict[str, Any],
    *,
    alg: str = "Tesla.SS256",
    aud: str = FLEET_AUDIENCE,
    iss_key: ec.EllipticCurvePrivateKey | None = None,
) -> str:
    signed = {
        **claims,
        "iss": base64.b64encode(public_bytes(iss_key or key)).decode(),
        "aud": aud,
    }
    header = _b64url(json.dumps({"alg": alg, "typ": "JWT"}).encode())
    payload = _b64url(json.dumps(signed).encode())
    signature = schnorr_sign(key, f"{header}.{payload}".encode())
    return f"{header}.{payload}.{_b64url(signature)}"


@pytest.fixture(scope="module")
def app_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def test_a_signature_verifies_only_for_its_key_and_message(
    app_key: ec.EllipticCurvePrivateKey,
) -> None:
    message = b"header.claims"
    signature = schnorr_sign(app_key, message)
    other = ec.generate_private_key(ec.SECP256R1())
    assert verify_signature(public_bytes(app_key), message, signature)
    assert not verify_signature(public_bytes(app_key), b"header.claimz", signature)
    assert not verify_signature(public_bytes(other), message, signature)
    flipped = signature[:-1] + bytes([signature[-1] ^ 1])
    assert not verify_signature(public_bytes(app_key), message, flipped)


def test_tescmds_own_signer_is_accepted(app_key: ec.EllipticCurvePrivateKey) -> None:
    token = sign_fleet_telemetry_config(app_key, {"hostname": "t.example.com", "fields": {}})
    verified = verify_token(token, public_bytes(app_key).hex())
    assert verified.claims["hostname"] == "t.example.com"
    assert verified.claims["aud"] == FLEET_AUDIENCE


def test_tampered_wrong_key_wrong_aud_and_wrong_alg_are_refused(
    app_key: ec.EllipticCurvePrivateKey,
) -> None:
    registered = public_bytes(app_key).hex()
    good = make_token(app_key, {"hostname": "t.example.com"})
    header, payload, signature = good.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["hostname"] = "evil.example.com"
    tampered = f"{header}.{_b64url(json.dumps(claims).encode())}.{signature}"
    stranger = ec.generate_private_key(ec.SECP256R1())
    cases: list[tuple[str, type[Exception], str]] = [
        (tampered, TokenRefused, "signature does not verify"),
        (make_token(stranger, {}), TokenRefused, "iss is not this app's registered public key"),
        (make_token(stranger, {}, iss_key=app_key), TokenRefused, "signature does not verify"),
        (make_token(app_key, {}, aud="com.tesla.vehicle.X.TelemetryClient"), TokenRefused, "aud"),
        (make_token(app_key, {}, alg="ES256"), InvalidRequest, "alg must be Tesla.SS256"),
        ("not.a-token", InvalidRequest, "3 dot-separated parts"),
    ]
    for token, refused, words in cases:
        with pytest.raises(refused) as caught:
            verify_token(token, registered)
        assert words in str(caught.value)
    with pytest.raises(TokenRefused, match="no registered public key"):
        verify_token(good, None)


def test_the_challenge_matches_tescmds_lv_framing(app_key: ec.EllipticCurvePrivateKey) -> None:
    nonce = public_bytes(ec.generate_private_key(ec.SECP256R1()))
    message = b"eyJhbGciOiJUZXNsYS5TUzI1NiJ9.e30"
    theirs = tescmd_challenge(nonce, public_bytes(app_key), message)
    assert challenge(nonce, public_bytes(app_key), message) == int.from_bytes(theirs, "big")


@pytest.fixture(scope="module")
def demo(
    tmp_path_factory: pytest.TempPathFactory, app_key: ec.EllipticCurvePrivateKey
) -> Iterator[LiveDemo]:
    live = start_live_demo(Path(tmp_path_factory.mktemp("telemetry-jws")), vehicles=1)
    try:
        set_public_key(live, str(live.info["client_id"]), public_bytes(app_key).hex())
        pair_keys(live, live.vins)
        yield live
    finally:
        live.stop()


def test_a_signed_config_is_applied(demo: LiveDemo, app_key: ec.EllipticCurvePrivateKey) -> None:
    with loopback_listener() as port:
        token = make_token(app_key, config(port, ca_pem()))
        with api(demo) as client:
            answer = client.post(JWS, json={"vins": demo.vins, "token": token})
            shown = client.get(f"/api/1/vehicles/{demo.vins[0]}/fleet_telemetry_config")
    assert answer.status_code == 200, answer.text
    assert answer.json()["response"]["updated_vehicles"] == 1
    stored = shown.json()["response"]["config"]
    assert stored["port"] == port and "iss" not in stored and "aud" not in stored


def test_signed_configs_are_refused_with_clear_messages(
    demo: LiveDemo, app_key: ec.EllipticCurvePrivateKey
) -> None:
    stranger = ec.generate_private_key(ec.SECP256R1())
    with loopback_listener() as port:
        body = config(port, ca_pem())
        bad_field = {**body, "fields": {"Sco": {"interval_seconds": 5}}}
        with api(demo) as client:
            forged = client.post(JWS, json={"vins": demo.vins, "token": make_token(stranger, body)})
            invalid = client.post(
                JWS, json={"vins": demo.vins, "token": make_token(app_key, bad_field)}
            )
            missing = client.post(JWS, json={"vins": demo.vins})
            a_number = client.post(JWS, json={"vins": demo.vins, "token": 5})
    # Not a 401: clients read that as a bad access token, and this one is fine.
    assert forged.status_code == 400 and forged.json()["error"] == "invalid_request"
    assert "registered public key" in forged.json()["error_description"]
    assert a_number.status_code == 400
    assert a_number.json()["error_description"] == (
        'token must be a string, the compact JWS "<header>.<claims>.<signature>", not number 5'
    )
    assert invalid.status_code == 400
    assert "token.fields.Sco" in invalid.json()["messages"]
    assert missing.status_code == 400
    assert "token is required" in missing.json()["error_description"]
