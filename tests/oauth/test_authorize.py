"""The authorization-code flow over real HTTP: authorize, consent, code, token, API, refresh.

One negative test per RFC 9700 rule: exact redirect_uri, state, PKCE without downgrade, single
use, client authentication and binding, expiry.
"""

from __future__ import annotations

import logging
from urllib.parse import parse_qs, quote, urlsplit

import httpx
import pytest

from flotta.auth.scopes import OWNER_SCOPES
from tests.live import LiveDemo
from tests.oauth.flow import (
    AUTHORIZE,
    CALLBACK,
    DEMO_OWNER,
    App,
    Owner,
    Pkce,
    api,
    authorize_params,
    authorize_url,
    browser,
    checkboxes,
    consent_form,
    exchange,
    expire_code,
    follow_consent,
    new_owner,
    redirect_query,
    refresh,
    register_app,
)
from tests.oauth.support import claims


def refused(response: httpx.Response, key: str, status: int = 400) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"] == key
    return str(body["error_description"])


def code_for(live: LiveDemo, owner: Owner, app: App, pkce: Pkce | None, **extra: str) -> str:
    with browser(live, owner) as client:
        query = redirect_query(follow_consent(client, authorize_params(app, pkce, **extra)))
    assert "error" not in query, query
    return query["code"]


@pytest.fixture(scope="module")
def demo_owner(live: LiveDemo) -> Owner:
    return new_owner(live, email=DEMO_OWNER)


@pytest.fixture(scope="module")
def owner(live: LiveDemo) -> Owner:
    return new_owner(live, vehicles=1)


def test_full_flow_consent_code_tokens_vehicle_data_refresh(
    live: LiveDemo, demo_owner: Owner
) -> None:
    app = register_app(live, name="Full Flow App")
    pkce = Pkce()
    params = authorize_params(app, pkce, nonce="n-0S6_WzA2Mj")
    with browser(live, demo_owner) as client:
        page = client.get(authorize_url(params))
        assert page.status_code == 200
        assert page.headers["x-frame-options"] == "DENY"
        assert "Full Flow App" in page.text and "app.example.com" in page.text
        assert "Vehicle location" in page.text  # scopes in plain words
        # Every car, and (the app asks energy scopes too) the demo owner's two homes.
        assert set(checkboxes(page.text, "allow_device")) == {
            f"vehicle:{i}" for i in demo_owner.fleet_ids
        } | {f"energy_site:{s}" for s in live.info["energy_sites"]}
        answer = client.post(AUTHORIZE, data=consent_form(page.text))
    assert answer.status_code == 303
    assert answer.headers["location"].startswith(CALLBACK + "?")
    query = redirect_query(answer)
    assert query["state"] == params["state"] and query["code"].startswith("NA_")
    tokens = exchange(live, app, query["code"], pkce).json()
    assert set(tokens) >= {"access_token", "refresh_token", "id_token", "expires_in", "scope"}
    assert tokens["token_type"] == "Bearer" and tokens["scope"] == " ".join(OWNER_SCOPES)
    access = claims(tokens["access_token"])
    assert access["azp"] == app.client_id and access["sub"] == demo_owner.subject
    assert live.base_url in access["aud"] and access["ou_code"] == "NA"
    assert claims(tokens["id_token"])["nonce"] == "n-0S6_WzA2Mj"
    vin = demo_owner.vins[0]
    with api(live, tokens["access_token"]) as fleet:
        assert fleet.post(f"/api/1/vehicles/{vin}/wake_up").status_code == 200
        data = fleet.get(f"/api/1/vehicles/{vin}/vehicle_data")
        assert data.status_code == 200, data.text
        assert data.json()["response"]["vin"] == vin
    renewed = refresh(live, app, tokens["refresh_token"])
    assert renewed.status_code == 200, renewed.text
    with api(live, renewed.json()["access_token"]) as fleet:
        assert vin in [v["vin"] for v in fleet.get("/api/1/vehicles").json()["response"]]


def test_signed_out_customers_go_to_the_login_page_and_back(live: LiveDemo) -> None:
    app = register_app(live)
    url = authorize_url(authorize_params(app, Pkce()))
    with browser(live) as client:
        answer = client.get(url)
    assert answer.status_code == 303
    assert answer.headers["location"] == f"/portal/login?next={quote(url, safe='')}"


@pytest.mark.parametrize(
    "variant",
    [
        "https://app.example.com/callback/",
        "https://app.example.com/callbac",
        "https://app.example.com/callback/extra",
        "https://app.example.com:8443/callback",
        "https://app.example.com/callback?x=1",
        "https://APP.example.com/callback",
        "http://app.example.com/callback",
        "https://app.example.com.evil.test/callback",
        "",
    ],
)
def test_only_an_exactly_registered_redirect_uri_is_used(
    live: LiveDemo, owner: Owner, variant: str
) -> None:
    app = register_app(live)
    params = authorize_params(app, Pkce(), redirect_uri=variant)
    with browser(live, owner) as client:
        answer = client.get(authorize_url(params))
    assert answer.status_code == 400 and "location" not in answer.headers
    assert "redirect" in answer.text and 'role="alert"' in answer.text


def test_unknown_or_unapproved_apps_get_a_page_not_a_redirect(live: LiveDemo) -> None:
    pending = register_app(live, status="pending")
    unknown = App("no-such-client", None, CALLBACK, 0)
    with browser(live) as client:
        for app in (pending, unknown):
            answer = client.get(authorize_url(authorize_params(app, Pkce())))
            assert answer.status_code == 400 and "location" not in answer.headers
            assert "not approved" in answer.text


def test_request_errors_redirect_back_with_the_state(live: LiveDemo) -> None:
    confidential = register_app(live)
    public = register_app(live, confidential=False)
    pkce = Pkce()
    cases = [
        (confidential, {"response_type": "token"}, "unsupported_response_type"),
        (confidential, {"scope": "openid vehicle_teleport"}, "invalid_scope"),
        (public, {"code_challenge": None, "code_challenge_method": None}, "invalid_request"),
        (confidential, {"code_challenge_method": "plain"}, "invalid_request"),
        (confidential, {"code_challenge_method": None}, "invalid_request"),
        (confidential, {"code_challenge": "short"}, "invalid_request"),
    ]
    with browser(live) as client:
        for app, change, error in cases:
            params = authorize_params(app, pkce)
            for name, value in change.items():
                if value is None:
                    params.pop(name)
                else:
                    params[name] = value
            query = redirect_query(client.get(authorize_url(params)))
            assert query["error"] == error, (change, query)
            assert query["state"] == params["state"] and query["error_description"]
            if app is public:
                assert "public apps must use PKCE" in query["error_description"]
        no_state = authorize_params(confidential, pkce)
        no_state.pop("state")
        query = redirect_query(client.get(authorize_url(no_state)))
        assert query["error"] == "invalid_request" and "state" not in query


def test_state_comes_back_unchanged(live: LiveDemo, owner: Owner) -> None:
    app = register_app(live, redirect_uris=["https://app.example.com/cb?tenant=7"])
    state = "a b&c=d/é?+%"
    with browser(live, owner) as client:
        answer = follow_consent(client, authorize_params(app, Pkce(), state=state))
    query = redirect_query(answer)
    assert query["state"] == state and query["tenant"] == "7"  # the registered query is kept


def test_pkce_cannot_be_downgraded(live: LiveDemo, owner: Owner) -> None:
    app = register_app(live)
    pkce = Pkce()
    code = code_for(live, owner, app, pkce)
    assert "code_verifier" in refused(exchange(live, app, code, None), "invalid_auth_code")
    wrong = Pkce()
    assert "does not match" in refused(exchange(live, app, code, wrong), "invalid_auth_code")
    assert exchange(live, app, code, pkce).status_code == 200  # failed tries did not use it
    plain_code = code_for(live, owner, app, None)
    sent = exchange(live, app, plain_code, pkce)
    assert "no code_challenge" in refused(sent, "invalid_auth_code")


def test_a_code_works_once_and_a_replay_revokes_what_it_issued(
    live: LiveDemo, owner: Owner
) -> None:
    app = register_app(live)
    pkce = Pkce()
    code = code_for(live, owner, app, pkce)
    first = exchange(live, app, code, pkce)
    assert first.status_code == 200
    assert "already used" in refused(exchange(live, app, code, pkce), "invalid_auth_code")
    refused(refresh(live, app, first.json()["refresh_token"]), "login_required", 401)


def test_a_confidential_app_must_authenticate(live: LiveDemo, owner: Owner) -> None:
    app = register_app(live)
    pkce = Pkce()
    code = code_for(live, owner, app, pkce)
    without = App(app.client_id, None, app.redirect_uri, app.pk)
    refused(exchange(live, without, code, pkce), "unauthorized_client")
    refused(exchange(live, app, code, pkce, client_secret="fcs_wrong"), "unauthorized_client")
    assert exchange(live, app, code, pkce).status_code == 200


def test_a_public_app_exchanges_with_pkce_and_no_secret(live: LiveDemo, owner: Owner) -> None:
    app = register_app(live, confidential=False)
    pkce = Pkce()
    code = code_for(live, owner, app, pkce)
    refused(exchange(live, app, code, pkce, client_secret="fcs_guess"), "unauthorized_client")
    body = exchange(live, app, code, pkce).json()
    assert claims(body["access_token"])["azp"] == app.client_id


def test_a_code_is_bound_to_its_client_and_redirect_uri(live: LiveDemo, owner: Owner) -> None:
    app = register_app(live, redirect_uris=[CALLBACK, "https://app.example.com/other"])
    thief = register_app(live)
    pkce = Pkce()
    code = code_for(live, owner, app, pkce)
    stolen = App(thief.client_id, thief.secret, app.redirect_uri, thief.pk)
    assert "unknown" in refused(exchange(live, stolen, code, pkce), "invalid_auth_code")
    moved = exchange(live, app, code, pkce, redirect_uri="https://app.example.com/other")
    refused(moved, "invalid_redirect_url")
    assert exchange(live, app, code, pkce).status_code == 200


def test_an_expired_code_is_refused(live: LiveDemo, owner: Owner) -> None:
    app = register_app(live)
    pkce = Pkce()
    code = code_for(live, owner, app, pkce)
    expire_code(live, code)
    assert "expired" in refused(exchange(live, app, code, pkce), "invalid_auth_code")


def test_consent_is_remembered_unless_the_app_asks_again(live: LiveDemo, owner: Owner) -> None:
    app = register_app(live)
    with browser(live, owner) as client:
        assert "code" in redirect_query(follow_consent(client, authorize_params(app, Pkce())))
        again = client.get(authorize_url(authorize_params(app, Pkce())))
        assert again.status_code == 303 and "code" in redirect_query(again)
        shown = client.get(authorize_url(authorize_params(app, Pkce(), prompt="consent")))
        assert shown.status_code == 200 and "Allow" in shown.text


def test_prompt_login_signs_the_customer_in_again_then_continues(
    live: LiveDemo, owner: Owner
) -> None:
    app = register_app(live)
    pkce = Pkce()
    with browser(live, owner) as client:
        follow_consent(client, authorize_params(app, Pkce()))
        params = authorize_params(app, pkce, prompt="login consent")
        answer = client.get(authorize_url(params))
        resume = parse_qs(urlsplit(answer.headers["location"]).query)["next"][0]
        # The session the browser held is not ended (a link must not sign anyone out)...
        plain = client.get(authorize_url(authorize_params(app, Pkce())))
        # ...but it is older than the prompt: the resumed request asks for a sign-in again,
        # and the login page shows its form although the browser is signed in.
        stale = client.get(resume)
        form = client.get(stale.headers["location"])
    assert answer.status_code == 303
    assert urlsplit(answer.headers["location"]).path == "/portal/login"
    assert parse_qs(urlsplit(resume).query)["prompt"] == ["consent"]  # login asked once only
    assert plain.status_code == 303 and "code" in redirect_query(plain)
    assert stale.status_code == 303 and urlsplit(stale.headers["location"]).path == "/portal/login"
    assert form.status_code == 200 and "sign in again" in form.text
    with browser(live, owner) as signed_in_again:
        page = signed_in_again.get(resume)
        assert page.status_code == 200 and "Allow" in page.text
        query = redirect_query(signed_in_again.post(AUTHORIZE, data=consent_form(page.text)))
    assert exchange(live, app, query["code"], pkce).status_code == 200


def test_prompt_missing_scopes_asks_only_for_new_ones(live: LiveDemo, owner: Owner) -> None:
    app = register_app(live)
    pkce = Pkce()
    first = authorize_params(app, Pkce(), scope="openid user_data")
    wider = authorize_params(
        app, pkce, scope="openid user_data vehicle_device_data", prompt_missing_scopes="true"
    )
    with browser(live, owner) as client:
        follow_consent(client, first)
        page = client.get(authorize_url(wider))
        assert set(checkboxes(page.text, "allow_scope")) == {"vehicle_device_data"}
        assert "Already allowed" in page.text and "Your profile" in page.text
        query = redirect_query(client.post(AUTHORIZE, data=consent_form(page.text)))
    body = exchange(live, app, query["code"], pkce).json()
    assert claims(body["access_token"])["scp"] == ["openid", "user_data", "vehicle_device_data"]


def test_unticked_scopes_and_vehicles_are_left_out(live: LiveDemo) -> None:
    person = new_owner(live, vehicles=2)
    app = register_app(live)
    pkce = Pkce()
    keep = f"vehicle:{person.fleet_ids[0]}"
    optional = set(OWNER_SCOPES) - {"openid", "offline_access", "vehicle_cmds"}
    with browser(live, person) as client:
        params = authorize_params(app, pkce)
        answer = follow_consent(client, params, scopes=optional, devices={keep})
    tokens = exchange(live, app, redirect_query(answer)["code"], pkce).json()
    assert "vehicle_cmds" not in claims(tokens["access_token"])["scp"]
    assert "offline_access" in claims(tokens["access_token"])["scp"]  # not optional
    with api(live, tokens["access_token"]) as fleet:
        listed = fleet.get("/api/1/vehicles").json()["response"]
    assert [v["vin"] for v in listed] == [person.vins[0]]


def test_require_requested_scopes_is_all_or_nothing(live: LiveDemo, owner: Owner) -> None:
    app = register_app(live)
    pkce = Pkce()
    params = authorize_params(app, pkce, require_requested_scopes="true")
    with browser(live, owner) as client:
        page = client.get(authorize_url(params))
        assert checkboxes(page.text, "allow_scope") == {}  # nothing can be unticked
        form = consent_form(page.text)
        del form["allow_scope"]
        query = redirect_query(client.post(AUTHORIZE, data=form))
    scopes = claims(exchange(live, app, query["code"], pkce).json()["access_token"])["scp"]
    assert scopes == OWNER_SCOPES


def test_deny_sends_access_denied_with_the_state(live: LiveDemo, owner: Owner) -> None:
    app = register_app(live)
    params = authorize_params(app, Pkce())
    with browser(live, owner) as client:
        query = redirect_query(follow_consent(client, params, decision="deny"))
    assert query["error"] == "access_denied" and query["state"] == params["state"]
    assert "code" not in query


def test_the_consent_form_needs_its_csrf_token(live: LiveDemo, owner: Owner) -> None:
    app = register_app(live)
    with browser(live, owner) as client:
        page = client.get(authorize_url(authorize_params(app, Pkce())))
        form = consent_form(page.text)
        del form["csrf_token"]
        answer = client.post(AUTHORIZE, data=form)
    assert answer.status_code == 403 and "location" not in answer.headers


def test_prompt_none_never_shows_a_page(live: LiveDemo, owner: Owner) -> None:
    app = register_app(live)
    params = authorize_params(app, Pkce(), prompt="none")
    with browser(live) as signed_out:
        assert redirect_query(signed_out.get(authorize_url(params)))["error"] == "login_required"
    with browser(live, owner) as client:
        query = redirect_query(client.get(authorize_url(params)))
    assert query["error"] == "consent_required" and query["state"] == params["state"]


def test_first_party_apps_need_no_consent_page(live: LiveDemo, owner: Owner) -> None:
    app = App("ownerapi", None, "tesla://auth/callback", 0)
    pkce = Pkce()
    params = authorize_params(app, pkce, scope="openid email offline_access")
    with browser(live, owner) as client:
        answer = client.get(authorize_url(params))
    assert answer.headers["location"].startswith("tesla://auth/callback?code=NA_")
    body = exchange(live, app, redirect_query(answer)["code"], pkce).json()
    assert claims(body["id_token"])["email"] == owner.email


def test_codes_verifiers_and_secrets_never_reach_the_logs(
    live: LiveDemo,
    owner: Owner,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    app = register_app(live)
    pkce = Pkce()
    with caplog.at_level(logging.DEBUG):
        code = code_for(live, owner, app, pkce)
        tokens = exchange(live, app, code, pkce).json()
        exchange(live, app, code, pkce)  # a replay is logged nowhere either
    captured = capsys.readouterr()
    # The test's own httpx client traces the redirect it receives; only the server's logs count.
    server = [
        r.getMessage() for r in caplog.records if not r.name.startswith(("httpx", "httpcore"))
    ]
    text = "\n".join(server) + captured.out + captured.err
    assert server, "nothing was logged at all: the check below would be vacuous"
    for value in (code, pkce.verifier, str(app.secret), tokens["refresh_token"]):
        assert value not in text
