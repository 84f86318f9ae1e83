"""`POST /oauth2/v3/token` and friends against a live demo: rotation, grace, reuse, errors."""

from __future__ import annotations

import logging

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import KeySet

from tests.live import LiveDemo
from tests.oauth.support import (
    backdate,
    claims,
    issue_family,
    issue_ownerapi_family,
    post_token,
)

DAY_S = 86_400
UNKNOWN_CLIENT = "We don't recognize this client_id and client_secret combination"


def refresh(live: LiveDemo, token: str, **extra: str) -> httpx.Response:
    return post_token(
        live,
        grant_type="refresh_token",
        client_id=str(live.info["client_id"]),
        refresh_token=token,
        **extra,
    )


def ok(response: httpx.Response) -> dict[str, object]:
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    return body


def refused(response: httpx.Response, status: int, key: str) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"] == key
    assert "response" not in body  # RFC 6749 §5.2 body, not the Fleet API envelope
    assert response.headers["cache-control"] == "no-store"
    return str(body["error_description"])


def test_refresh_rotates_and_the_new_access_token_works(live: LiveDemo) -> None:
    first = issue_family(live)
    body = ok(refresh(live, first))
    assert set(body) >= {"access_token", "refresh_token", "token_type", "expires_in", "id_token"}
    assert body["token_type"] == "Bearer" and body["expires_in"] == 28800
    second = str(body["refresh_token"])
    assert second.startswith("NA_") and second != first
    assert "scope" not in body  # none was requested, so nothing to echo
    listed = httpx.get(
        f"{live.base_url}/api/1/vehicles",
        headers={"Authorization": f"Bearer {body['access_token']}"},
        timeout=10,
    )
    assert listed.status_code == 200
    assert claims(str(body["access_token"]))["azp"] == live.info["client_id"]
    # The new one is single use too, and rotates again.
    third = str(ok(refresh(live, second))["refresh_token"])
    assert third not in (first, second)


def test_demo_json_has_a_working_refresh_token(live: LiveDemo) -> None:
    assert live.info["token_url"] == f"{live.base_url}/oauth2/v3/token"
    assert str(live.info["client_secret"]).startswith("fcs_")
    body = ok(
        refresh(
            live, str(live.info["refresh_token"]), client_secret=str(live.info["client_secret"])
        )
    )
    assert str(body["refresh_token"]).startswith("NA_")


def test_the_last_used_token_works_for_the_grace_period(live: LiveDemo) -> None:
    first = issue_family(live)
    lost = str(ok(refresh(live, first))["refresh_token"])  # say the answer never arrived
    backdate(live, first, used_s=23 * 3600)
    retried = str(ok(refresh(live, first))["refresh_token"])
    assert retried != lost
    # The retry replaced the lost child: at most one live token per family.
    refused(refresh(live, lost), 401, "login_required")
    # ...and presenting a replaced token is reuse: the whole family is gone.
    refused(refresh(live, retried), 401, "login_required")


def test_reuse_after_the_grace_period_revokes_the_family(live: LiveDemo) -> None:
    first = issue_family(live)
    second = str(ok(refresh(live, first))["refresh_token"])
    backdate(live, first, used_s=DAY_S + 60)
    description = refused(refresh(live, first), 401, "login_required")
    assert "already used" in description
    refused(refresh(live, second), 401, "login_required")  # the live child died with it


def test_an_older_used_token_is_reuse_even_within_the_grace_period(live: LiveDemo) -> None:
    first = issue_family(live)
    second = str(ok(refresh(live, first))["refresh_token"])
    third = str(ok(refresh(live, second))["refresh_token"])
    refused(refresh(live, first), 401, "login_required")  # only `second` had the grace
    refused(refresh(live, third), 401, "login_required")


def test_expired_refresh_token_needs_a_new_login(live: LiveDemo) -> None:
    token = issue_family(live)
    backdate(live, token, expire=True)
    assert "expired" in refused(refresh(live, token), 401, "login_required")


def test_a_subset_of_scopes_narrows_the_access_token(live: LiveDemo) -> None:
    body = ok(refresh(live, issue_family(live), scope="vehicle_device_data user_data"))
    assert claims(str(body["access_token"]))["scp"] == ["vehicle_device_data", "user_data"]
    assert body["scope"] == "vehicle_device_data user_data"  # unchanged, so echoed
    assert "id_token" not in body  # no openid in the grant


def test_identity_scopes_keep_the_family_api_scopes(live: LiveDemo) -> None:
    # TeslaPy and teslajsonpy always send this scope string.
    body = ok(refresh(live, issue_family(live), scope="openid email offline_access"))
    scp = claims(str(body["access_token"]))["scp"]
    assert {"openid", "email", "vehicle_device_data", "vehicle_cmds"} <= set(scp)
    assert "scope" not in body  # it differs from the request: oauthlib would raise
    assert "id_token" in body


def test_scopes_beyond_the_grant_are_refused(live: LiveDemo) -> None:
    token = issue_family(live, scopes=["openid", "offline_access", "vehicle_device_data"])
    description = refused(refresh(live, token, scope="vehicle_cmds"), 403, "invalid_scope")
    assert "vehicle_cmds" in description
    ok(refresh(live, token))  # a refused scope request did not consume the token


def test_id_token_is_signed_for_the_client_and_verifies_with_the_jwks(live: LiveDemo) -> None:
    body = ok(refresh(live, issue_family(live)))
    keys = httpx.get(f"{live.base_url}/oauth2/v3/discovery/keys", timeout=10).json()
    decoded = jwt.decode(str(body["id_token"]), KeySet.import_key_set(keys), algorithms=["ES256"])
    assert decoded.claims["aud"] == live.info["client_id"]
    assert decoded.claims["email"] == "owner@flotta.demo"
    assert decoded.claims["sub"] == claims(live.token)["sub"]
    assert decoded.claims["exp"] > decoded.claims["iat"]


def test_no_id_token_without_openid(live: LiveDemo) -> None:
    body = ok(refresh(live, issue_family(live, scopes=["offline_access", "vehicle_device_data"])))
    assert "id_token" not in body


def test_client_credentials_mints_a_partner_token(live: LiveDemo) -> None:
    body = ok(
        post_token(
            live,
            grant_type="client_credentials",
            client_id=str(live.info["client_id"]),
            client_secret=str(live.info["client_secret"]),
            audience="https://fleet-api.prd.na.vn.cloud.tesla.com",
            scope="openid vehicle_device_data",
        )
    )
    assert set(body) == {"access_token", "token_type", "expires_in"}
    token = str(body["access_token"])
    decoded = claims(token)
    assert decoded["token_type"] == "partner"
    assert decoded["sub"] == live.info["client_id"]
    assert decoded["scp"] == ["vehicle_device_data"]
    assert "https://fleet-api.prd.na.vn.cloud.tesla.com" in decoded["aud"]
    assert live.handle.runtime.tokens.verify(token).partner is True


def test_partner_tokens_need_a_confidential_client_and_its_secret(live: LiveDemo) -> None:
    form = {"grant_type": "client_credentials", "audience": live.base_url}
    cid = str(live.info["client_id"])
    refused(
        post_token(live, client_id="ownerapi", client_secret="x", **form),
        400,
        "unauthorized_client",
    )
    wrong = refused(
        post_token(live, client_id=cid, client_secret="fcs_wrong", **form),
        400,
        "unauthorized_client",
    )
    assert wrong == UNKNOWN_CLIENT
    missing = refused(post_token(live, client_id=cid, **form), 400, "unauthorized_client")
    assert missing == "a partner token needs the app's client_secret"
    # A public app has no secret to send: it is told what it can never get, as docs/oauth.md says.
    public = refused(post_token(live, client_id="ownerapi", **form), 400, "unauthorized_client")
    assert public == "public clients cannot obtain partner tokens"
    as_json = httpx.post(
        f"{live.base_url}/oauth2/v3/token",
        json={**form, "client_id": cid, "client_secret": str(live.info["client_secret"])},
        timeout=10,
    )
    assert refused(as_json, 400, "invalid_request") == (
        "send an application/x-www-form-urlencoded body, not JSON"
    )
    secret = str(live.info["client_secret"])
    no_audience = post_token(
        live, grant_type="client_credentials", client_id=cid, client_secret=secret
    )
    assert refused(no_audience, 400, "invalid_request") == "missing audience param"
    bad = post_token(
        live,
        client_id=cid,
        client_secret=secret,
        grant_type="client_credentials",
        audience="not a url",
    )
    assert "audience" in refused(bad, 400, "invalid_request")


def test_error_keys_and_statuses(live: LiveDemo) -> None:
    assert "refresh_token" in refused(
        post_token(live, grant_type="password", client_id="x"), 400, "unsupported_grant_type"
    )
    assert refused(post_token(live), 400, "invalid_request") == "missing grant_type param"
    assert (
        refused(
            post_token(live, grant_type="refresh_token", refresh_token="NA_x"),
            400,
            "invalid_request",
        )
        == "missing client_id param"
    )
    assert (
        refused(
            post_token(live, grant_type="refresh_token", client_id=str(live.info["client_id"])),
            400,
            "invalid_request",
        )
        == "missing refresh_token param"
    )
    unknown = post_token(live, grant_type="refresh_token", client_id="nobody", refresh_token="x")
    assert refused(unknown, 400, "unauthorized_client") == UNKNOWN_CLIENT
    token = issue_family(live)
    refused(refresh(live, token, client_secret="fcs_wrong"), 400, "unauthorized_client")
    refused(refresh(live, "NA_not-a-token"), 401, "login_required")
    repeated = httpx.post(
        f"{live.base_url}/oauth2/v3/token",
        content=b"grant_type=refresh_token&grant_type=client_credentials",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        timeout=10,
    )
    refused(repeated, 400, "invalid_request")
    ok(refresh(live, token))  # none of the refusals above consumed it


def test_a_token_only_works_for_the_client_it_was_issued_to(live: LiveDemo) -> None:
    token = issue_ownerapi_family(live)
    refused(refresh(live, token), 401, "login_required")
    teslapy_like = post_token(
        live, grant_type="refresh_token", client_id="ownerapi", refresh_token=token
    )
    ok(teslapy_like)  # refusing the wrong client did not revoke the family


def test_revoke_ends_the_family(live: LiveDemo) -> None:
    token = issue_family(live)
    child = str(ok(refresh(live, token))["refresh_token"])
    revoked = httpx.post(
        f"{live.base_url}/oauth2/v3/revoke",
        data={"token": child, "client_id": str(live.info["client_id"])},
        timeout=10,
    )
    assert revoked.status_code == 200 and revoked.json() == {}
    refused(refresh(live, child), 401, "login_required")
    unknown = httpx.post(
        f"{live.base_url}/oauth2/v3/revoke",
        data={"token": "NA_unknown", "client_id": str(live.info["client_id"])},
        timeout=10,
    )
    assert unknown.status_code == 200  # RFC 7009 §2.2
    access = httpx.post(
        f"{live.base_url}/oauth2/v3/revoke",
        data={"token": live.token, "client_id": str(live.info["client_id"])},
        timeout=10,
    )
    refused(access, 400, "unsupported_token_type")


def test_discovery_documents(live: LiveDemo) -> None:
    for path in (
        "/oauth2/v3/thirdparty/.well-known/openid-configuration",
        "/.well-known/openid-configuration",
    ):
        meta = httpx.get(f"{live.base_url}{path}", timeout=10).json()
        assert meta["token_endpoint"] == f"{live.base_url}/oauth2/v3/token"
        assert meta["jwks_uri"] == f"{live.base_url}/oauth2/v3/discovery/keys"
        assert meta["id_token_signing_alg_values_supported"] == ["ES256"]
        assert set(meta["grant_types_supported"]) == {
            "authorization_code",
            "refresh_token",
            "client_credentials",
        }
        assert meta["authorization_endpoint"] == f"{live.base_url}/oauth2/v3/authorize"
        assert meta["code_challenge_methods_supported"] == ["S256"]
    keys = httpx.get(f"{live.base_url}/oauth2/v3/discovery/keys", timeout=10).json()["keys"]
    assert len(keys) == 1 and keys[0]["kty"] == "EC" and "d" not in keys[0]


def test_secrets_and_tokens_never_reach_the_logs(
    live: LiveDemo, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    secret = str(live.info["client_secret"])
    token = issue_family(live)
    with caplog.at_level(logging.DEBUG):
        issued = str(ok(refresh(live, token, client_secret=secret))["refresh_token"])
        refresh(live, token, client_secret="fcs_wrong-secret-value")
        backdate(live, token, used_s=2 * DAY_S)
        refresh(live, token)  # reuse: the family is revoked
        post_token(
            live,
            grant_type="client_credentials",
            client_id="nobody",
            client_secret=secret,
            audience=live.base_url,
        )
    captured = capsys.readouterr()
    text = caplog.text + captured.out + captured.err
    for value in (secret, token, issued, "fcs_wrong-secret-value"):
        assert value not in text
