"""A third-party app's token reaches only what its consent grant allows, on every request."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from flotta.auth.scopes import OWNER_SCOPES
from tests.live import LiveDemo
from tests.oauth.flow import (
    Owner,
    api,
    authorized_tokens,
    new_owner,
    register_app,
)
from tests.oauth.support import claims, issue_family, issue_ownerapi_family, post_token

UNKNOWN_VIN = "5YJ3E1EB0TF999999"


def shape(response: httpx.Response, tag: str) -> dict[str, Any]:
    """The error body with what legitimately differs (the tag named, the txid) blanked."""
    body: dict[str, Any] = response.json()
    body["error_description"] = str(body["error_description"]).replace(tag, "<tag>")
    body["txid"] = "<txid>"
    return body


@pytest.fixture(scope="module")
def owner_x(live: LiveDemo) -> Owner:
    return new_owner(live, vehicles=2)


@pytest.fixture(scope="module")
def owner_y(live: LiveDemo) -> Owner:
    return new_owner(live, vehicles=1)


@pytest.fixture(scope="module")
def token_x(live: LiveDemo, owner_x: Owner) -> str:
    """App A's token for owner X, who selected only X's first vehicle."""
    app = register_app(live, name="App A")
    chosen = {f"vehicle:{owner_x.fleet_ids[0]}"}
    return str(authorized_tokens(live, owner_x, app, devices=chosen)["access_token"])


def test_unselected_and_foreign_vehicles_look_absent(
    live: LiveDemo, owner_x: Owner, owner_y: Owner, token_x: str
) -> None:
    selected, unselected = owner_x.vins
    foreign = owner_y.vins[0]
    with api(live, token_x) as fleet:
        assert fleet.get(f"/api/1/vehicles/{selected}").status_code == 200
        unknown = fleet.get(f"/api/1/vehicles/{UNKNOWN_VIN}")
        assert unknown.status_code == 404
        for vin in (unselected, foreign):
            for path in (f"/api/1/vehicles/{vin}", f"/api/1/vehicles/{vin}/vehicle_data"):
                answer = fleet.get(path)
                assert answer.status_code == 404
                assert shape(answer, vin) == shape(unknown, UNKNOWN_VIN)
            command = fleet.post(f"/api/1/vehicles/{vin}/command/flash_lights")
            assert command.status_code == 404
        by_id = fleet.get(f"/api/1/vehicles/{owner_x.fleet_ids[1]}")
        assert by_id.status_code == 404


def test_lists_show_only_consented_vehicles(live: LiveDemo, owner_x: Owner, token_x: str) -> None:
    with api(live, token_x) as fleet:
        vehicles = fleet.get("/api/1/vehicles").json()
        products = fleet.get("/api/1/products").json()
        orders = fleet.get("/api/1/users/orders").json()
        status = fleet.post("/api/1/vehicles/fleet_status", json={"vins": owner_x.vins}).json()
    assert [v["vin"] for v in vehicles["response"]] == [owner_x.vins[0]]
    assert vehicles["count"] == 1
    assert [p["vin"] for p in products["response"]] == [owner_x.vins[0]]
    assert [o["vin"] for o in orders["response"]] == [owner_x.vins[0]]
    assert status["response"]["unpaired_vins"] == [owner_x.vins[0]]


def test_first_party_tokens_act_as_the_owner(live: LiveDemo, owner_x: Owner) -> None:
    cli = live.handle.runtime.tokens.mint(owner_x.subject, OWNER_SCOPES)
    with api(live, cli) as fleet:
        listed = fleet.get("/api/1/vehicles").json()["response"]
    assert sorted(v["vin"] for v in listed) == sorted(owner_x.vins)
    # ownerapi (first_party) needs no consent record: the demo owner never gave it one.
    refreshed = post_token(
        live,
        grant_type="refresh_token",
        client_id="ownerapi",
        refresh_token=issue_ownerapi_family(live),
    ).json()
    assert claims(refreshed["access_token"])["azp"] == "ownerapi"
    with api(live, refreshed["access_token"]) as fleet:
        listed = fleet.get("/api/1/vehicles").json()["response"]
    assert set(live.vins) <= {v["vin"] for v in listed}


def test_an_app_without_partner_registration_gets_412(live: LiveDemo, owner_x: Owner) -> None:
    app = register_app(live, partner_registered=False, name="Unregistered App")
    token = authorized_tokens(live, owner_x, app)["access_token"]
    with api(live, token) as fleet:
        answer = fleet.get("/api/1/vehicles")
    assert answer.status_code == 412
    body = answer.json()
    assert "must be registered in the current region" in body["error"]
    assert "POST /api/1/partner_accounts" in body["error_description"]


def test_a_token_without_consent_is_refused(live: LiveDemo, owner_y: Owner) -> None:
    app = register_app(live, name="Never Allowed")
    token = live.handle.runtime.tokens.mint(owner_y.subject, OWNER_SCOPES, client_id=app.client_id)
    with api(live, token) as fleet:
        answer = fleet.get("/api/1/vehicles")
    assert answer.status_code == 401
    assert "revoked" in answer.json()["error_description"]


def test_partner_tokens_cannot_reach_user_or_vehicle_endpoints(
    live: LiveDemo, owner_x: Owner
) -> None:
    app = register_app(live, name="Partner App")
    partner = post_token(
        live,
        grant_type="client_credentials",
        client_id=app.client_id,
        client_secret=str(app.secret),
        audience=live.base_url,
    ).json()["access_token"]
    with api(live, partner) as fleet:
        for answer in (
            fleet.get(f"/api/1/vehicles/{owner_x.vins[0]}/vehicle_data"),
            fleet.get("/api/1/vehicles"),
            fleet.get("/api/1/users/me"),
        ):
            assert answer.status_code == 403, answer.text
            assert "partner endpoints" in answer.json()["error_description"]


def test_refresh_needs_a_live_consent(live: LiveDemo) -> None:
    app = register_app(live, name="Refresh Without Consent")
    family = issue_family(live, client_id=app.client_id)  # a refresh token, but no consent
    answer = post_token(
        live,
        grant_type="refresh_token",
        client_id=app.client_id,
        client_secret=str(app.secret),
        refresh_token=family,
    )
    assert answer.status_code == 401 and answer.json()["error"] == "login_required"
    assert "revoked" in answer.json()["error_description"]
