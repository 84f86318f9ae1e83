"""The one reading of `Authorization: Bearer <token>` that the Fleet API, metering and the
telemetry stream share."""

from __future__ import annotations

import pytest

from flotta.auth.tokens import bearer_token


@pytest.mark.parametrize(
    ("header", "token"),
    [
        ("Bearer abc.def.ghi", "abc.def.ghi"),
        ("bearer abc", "abc"),  # the scheme is case-insensitive (RFC 9110 §11.1)
        ("BEARER   abc  ", "abc"),
        ("Bearer", None),
        ("Bearer    ", None),
        ("Basic dXNlcjpwYXNz", None),
        ("", None),
        (None, None),
    ],
)
def test_bearer_token(header: str | None, token: str | None) -> None:
    assert bearer_token(header) == token
