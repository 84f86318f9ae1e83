"""The vehicle surface as a client sees it: list, get, vehicle_data, wake_up, auth and errors."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from tests.live import LiveDemo


@pytest.fixture
def client(live: LiveDemo) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {live.token}"}
    with httpx.Client(base_url=live.base_url, headers=headers, timeout=15) as c:
        yield c


def idle_vin(live: LiveDemo) -> str:
    """A car that neither charges nor drives, so it may sleep."""
    return live.vins[2]


def test_status_is_plain_ok(client: httpx.Client) -> None:
    response = client.get("/status", headers={"Authorization": ""})
    assert response.status_code == 200
    assert response.text == "ok"


def test_list_paginates_with_count(client: httpx.Client, live: LiveDemo) -> None:
    first = client.get("/api/1/vehicles", params={"per_page": 3}).json()
    assert first["count"] == 3
    assert first["pagination"] == {
        "previous": None,
        "next": 2,
        "current": 1,
        "per_page": 3,
        "count": 4,
        "pages": 2,
    }
    second = client.get("/api/1/vehicles", params={"per_page": 3, "page": 2}).json()
    vins = [v["vin"] for v in first["response"] + second["response"]]
    assert vins == live.vins


def test_vehicle_by_vin_and_by_numeric_id_are_the_same(
    client: httpx.Client, live: LiveDemo
) -> None:
    by_vin = client.get(f"/api/1/vehicles/{live.vins[0]}").json()["response"]
    by_id = client.get(f"/api/1/vehicles/{by_vin['id_s']}").json()["response"]
    assert by_id["vin"] == live.vins[0]
    assert by_vin["id"] == by_id["id"] == int(by_vin["id_s"])
    assert by_vin["state"] == "online"


def test_products_lists_each_vehicle_with_product_members(client: httpx.Client) -> None:
    body = client.get("/api/1/products").json()
    assert body["count"] == 6  # four vehicles, then the demo's two energy sites
    vehicles = [p for p in body["response"] if p["device_type"] == "vehicle"]
    assert body["response"][:4] == vehicles
    assert {p["command_signing"] for p in vehicles} == {"allowed"}
    assert [p["device_type"] for p in body["response"][4:]] == ["energy", "energy"]


def test_vehicle_data_returns_only_requested_sections(client: httpx.Client, live: LiveDemo) -> None:
    data = client.get(
        f"/api/1/vehicles/{live.vins[0]}/vehicle_data",
        params={"endpoints": "charge_state;climate_state"},
    ).json()["response"]
    assert data["vin"] == live.vins[0]
    sections = {k for k, v in data.items() if isinstance(v, dict) and "timestamp" in v}
    assert sections == {"charge_state", "climate_state"}
    assert 0 <= data["charge_state"]["battery_level"] <= 100


def test_location_only_with_location_data_and_scope(client: httpx.Client, live: LiveDemo) -> None:
    url = f"/api/1/vehicles/{live.vins[0]}/vehicle_data"
    plain = client.get(url, params={"endpoints": "drive_state"}).json()["response"]
    assert "latitude" not in plain["drive_state"]
    located = client.get(url, params={"endpoints": "drive_state;location_data"}).json()
    assert isinstance(located["response"]["drive_state"]["latitude"], float)
    no_scope = live.mint(["vehicle_device_data"])
    hidden = client.get(
        url,
        params={"endpoints": "location_data;drive_state"},
        headers={"Authorization": f"Bearer {no_scope}"},
    ).json()
    assert "latitude" not in hidden["response"]["drive_state"]


def test_unknown_endpoint_name_is_400_naming_it(client: httpx.Client, live: LiveDemo) -> None:
    response = client.get(
        f"/api/1/vehicles/{live.vins[0]}/vehicle_data",
        params={"endpoints": "charge_state;warp_drive"},
    )
    assert response.status_code == 400
    assert "warp_drive" in response.json()["error_description"]


def test_command_changes_what_vehicle_data_shows(client: httpx.Client, live: LiveDemo) -> None:
    vin = live.vins[3]
    for percent in (62, 88):
        result = client.post(
            f"/api/1/vehicles/{vin}/command/set_charge_limit", json={"percent": percent}
        ).json()
        assert result == {"response": {"result": True, "reason": ""}}
        charge = client.get(
            f"/api/1/vehicles/{vin}/vehicle_data", params={"endpoints": "charge_state"}
        ).json()["response"]["charge_state"]
        assert charge["charge_limit_soc"] == percent
    assert client.post(f"/api/1/vehicles/{vin}/command/door_lock").json()["response"]["result"]
    state = client.get(
        f"/api/1/vehicles/{vin}/vehicle_data", params={"endpoints": "vehicle_state"}
    ).json()["response"]["vehicle_state"]
    assert state["locked"] is True


def test_vehicle_side_refusal_is_200_with_reason(client: httpx.Client, live: LiveDemo) -> None:
    vin = live.vins[3]
    client.post(f"/api/1/vehicles/{vin}/command/set_charge_limit", json={"percent": 70})
    again = client.post(f"/api/1/vehicles/{vin}/command/set_charge_limit", json={"percent": 70})
    assert again.status_code == 200
    assert again.json()["response"] == {"result": False, "reason": "already_set"}


def test_asleep_car_gets_408_then_wakes(client: httpx.Client, live: LiveDemo) -> None:
    vin = idle_vin(live)
    live.put_to_sleep(vin)
    deadline = time.monotonic() + 10
    while client.get(f"/api/1/vehicles/{vin}").json()["response"]["state"] != "asleep":
        assert time.monotonic() < deadline, "car never reported asleep"
        time.sleep(0.05)
    for response in (
        client.get(f"/api/1/vehicles/{vin}/vehicle_data"),
        client.post(f"/api/1/vehicles/{vin}/command/honk_horn"),
    ):
        assert response.status_code == 408
        assert response.json()["error"] == "vehicle unavailable: vehicle is offline or asleep"
    woken = client.post(f"/api/1/vehicles/{vin}/wake_up").json()["response"]
    assert woken["vin"] == vin
    assert woken["state"] == "online"  # the live demo uses the instant wake profile
    assert client.get(f"/api/1/vehicles/{vin}/vehicle_data").status_code == 200


@pytest.mark.parametrize(
    ("headers", "error"),
    [
        ({}, "invalid bearer token"),
        ({"Authorization": "Basic abc"}, "invalid bearer token"),
        ({"Authorization": "Bearer not.a.jwt"}, "invalid bearer token"),
    ],
)
def test_bad_tokens_get_401(live: LiveDemo, headers: dict[str, str], error: str) -> None:
    response = httpx.get(f"{live.base_url}/api/1/vehicles", headers=headers, timeout=10)
    assert response.status_code == 401
    assert response.json()["error"] == error
    assert response.json()["response"] is None


def test_expired_token_gets_401_token_expired(live: LiveDemo) -> None:
    expired = live.mint(["vehicle_device_data"], ttl_s=1)
    time.sleep(1.1)
    response = httpx.get(
        f"{live.base_url}/api/1/vehicles",
        headers={"Authorization": f"Bearer {expired}"},
        timeout=10,
    )
    assert response.status_code == 401
    assert response.json()["error"] == "token expired (401)"


def test_missing_scope_is_403(live: LiveDemo) -> None:
    token = live.mint(["user_data"])
    headers = {"Authorization": f"Bearer {token}"}
    for response in (
        httpx.get(f"{live.base_url}/api/1/vehicles", headers=headers, timeout=10),
        httpx.post(
            f"{live.base_url}/api/1/vehicles/{live.vins[0]}/command/honk_horn",
            headers=headers,
            timeout=10,
        ),
    ):
        assert response.status_code == 403
        assert response.json()["error"] == "Unauthorized missing scopes"


def test_charging_scope_allows_charging_commands_only(live: LiveDemo) -> None:
    headers = {"Authorization": f"Bearer {live.mint(['vehicle_charging_cmds'])}"}
    base = f"{live.base_url}/api/1/vehicles/{live.vins[3]}/command"
    assert (
        httpx.post(
            f"{base}/set_charging_amps", json={"charging_amps": 16}, headers=headers, timeout=10
        ).status_code
        == 200
    )
    assert httpx.post(f"{base}/honk_horn", headers=headers, timeout=10).status_code == 403


@pytest.mark.parametrize(
    ("body", "content", "fragment"),
    [
        (None, b"{not json", "not valid JSON"),
        (None, b"[1, 2]", "JSON object"),
        ({"percent": True}, None, "percent"),
        ({}, None, "missing percent"),
    ],
)
def test_malformed_command_bodies_are_400(
    client: httpx.Client, live: LiveDemo, body: object, content: bytes | None, fragment: str
) -> None:
    url = f"/api/1/vehicles/{live.vins[3]}/command/set_charge_limit"
    response = (
        client.post(url, json=body)
        if content is None
        else client.post(url, content=content, headers={"Content-Type": "application/json"})
    )
    assert response.status_code == 400
    assert fragment in response.json()["error_description"]


@pytest.mark.parametrize(
    ("body", "said"),
    [
        ({}, "missing routable_message param"),
        ({"routable_message": ""}, "missing routable_message param"),
        (
            {"routable_message": 123},
            "invalid routable_message param: must be a string (a base64 RoutableMessage)",
        ),
        (
            {"routable_message": "not base64!"},
            "invalid routable_message param: not standard base64",
        ),
    ],
)
def test_a_signed_command_that_is_not_one_says_why(
    client: httpx.Client, live: LiveDemo, body: dict[str, object], said: str
) -> None:
    answer = client.post(f"/api/1/vehicles/{live.vins[3]}/signed_command", json=body)
    assert answer.status_code == 400
    assert answer.json()["error_description"] == said


def test_unknown_route_and_vehicle_are_404_in_tesla_envelope(client: httpx.Client) -> None:
    for path in ("/api/1/nothing_here", "/api/1/vehicles/5YJ3E1EBXTF999999"):
        response = client.get(path)
        assert response.status_code == 404
        assert response.json()["response"] is None
        assert response.json()["error"] == "not_found"


def test_shared_address_becomes_the_route_destination(client: httpx.Client, live: LiveDemo) -> None:
    vin = live.vins[3]
    body = {
        "type": "share_ext_content_raw",
        "value": {"android.intent.extra.TEXT": "Piazza del Duomo, Milano"},
        "locale": "it-IT",
        "timestamp_ms": "1700000000000",
    }
    answer = client.post(f"/api/1/vehicles/{vin}/command/navigation_request", json=body).json()
    assert answer["response"] == {"result": True, "reason": "", "queued": True}
    drive = client.get(
        f"/api/1/vehicles/{vin}/vehicle_data", params={"endpoints": "drive_state;location_data"}
    ).json()["response"]
    assert drive["drive_state"]["active_route_destination"] == "Piazza del Duomo, Milano"


def test_malformed_path_and_query_name_the_parameter(client: httpx.Client) -> None:
    too_long = client.post(f"/api/1/vehicles/{'A' * 40}/command/honk_horn")
    assert too_long.status_code == 400
    assert too_long.json()["error_description"].startswith("invalid vehicle_tag param")
    bad_page = client.get("/api/1/vehicles", params={"page": "abc"})
    assert bad_page.json()["error_description"].startswith("invalid page param")
