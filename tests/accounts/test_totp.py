"""RFC 6238 TOTP helpers and recovery codes."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, unquote, urlsplit

import pyotp

from flotta.accounts import totp

NOW = datetime(2026, 11, 22, 12, 0, 10, tzinfo=UTC)


def test_rfc_6238_reference_vector() -> None:
    # RFC 6238 Appendix B, SHA-1 secret "12345678901234567890", T = 59 s -> 94287082 (8 digits);
    # the 6-digit code is its last six digits.
    secret = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
    at = datetime.fromtimestamp(59, tz=UTC)
    assert totp.matching_step(secret, "287082", at) == 1


def test_codes_of_the_neighbouring_steps_match_and_others_do_not() -> None:
    secret = totp.new_secret()
    authenticator = pyotp.TOTP(secret)
    step = totp.time_step(NOW)
    for offset in (-1, 0, 1):
        code = authenticator.at(NOW + timedelta(seconds=30 * offset))
        assert totp.matching_step(secret, code, NOW) == step + offset
    for offset in (-2, 2):
        code = authenticator.at(NOW + timedelta(seconds=30 * offset))
        if code not in {authenticator.at(NOW + timedelta(seconds=30 * o)) for o in (-1, 0, 1)}:
            assert totp.matching_step(secret, code, NOW) is None
    assert totp.matching_step(secret, "12345", NOW) is None
    assert totp.matching_step(secret, "abcdef", NOW) is None


def test_codes_typed_with_a_space_are_accepted() -> None:
    secret = totp.new_secret()
    code = pyotp.TOTP(secret).at(NOW)
    assert totp.matching_step(secret, f" {code[:3]} {code[3:]} ", NOW) == totp.time_step(NOW)


def test_secret_and_provisioning_uri() -> None:
    secret = totp.new_secret()
    assert re.fullmatch(r"[A-Z2-7]{32}", secret)  # 160 bits
    uri = totp.provisioning_uri(secret, "ada@example.com")
    parts = urlsplit(uri)
    assert parts.scheme == "otpauth" and parts.netloc == "totp"
    assert unquote(parts.path) == "/Flotta:ada@example.com"
    query = parse_qs(parts.query)
    assert query["secret"] == [secret] and query["issuer"] == ["Flotta"]


def test_qr_code_is_inline_accessible_svg() -> None:
    svg = totp.qr_svg(totp.provisioning_uri(totp.new_secret(), "ada@example.com"))
    assert svg.startswith('<svg role="img" aria-label="QR code for your authenticator app"')
    assert "<script" not in svg


def test_recovery_codes_are_distinct_readable_and_normalized() -> None:
    codes = totp.new_recovery_codes()
    assert len(codes) == 10 == len(set(codes))
    assert all(re.fullmatch(r"[a-z2-9]{5}-[a-z2-9]{5}", c) for c in codes)
    assert not any(ch in "01ilo" for c in codes for ch in c.replace("-", ""))
    assert totp.normalize_recovery_code(" ABCDE-fghjk ") == "abcdefghjk"
