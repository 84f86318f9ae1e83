"""Legacy push registration: a device follows all, or chosen, vehicles of its account."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.live import LiveDemo

DEVICE = {"device_token": "fcm-token-123", "device_type": "android"}


@pytest.fixture
def client(live: LiveDemo) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {live.token}"}
    with httpx.Client(base_url=live.base_url, headers=headers, timeout=10) as c:
        yield c


def ids_of(client: httpx.Client, live: LiveDemo) -> dict[str, int]:
    return {v["vin"]: v["id"] for v in client.get("/api/1/vehicles").json()["response"]}


def test_subscribe_all_then_narrow_to_chosen_vehicles(client: httpx.Client, live: LiveDemo) -> None:
    fleet_ids = ids_of(client, live)
    everything = client.post("/api/1/subscriptions", json=DEVICE).json()
    assert everything["response"]["ids"] == sorted(fleet_ids.values())
    assert everything["count"] == len(fleet_ids)
    chosen = [fleet_ids[live.vins[1]]]
    narrowed = client.post("/api/1/vehicle_subscriptions", json={**DEVICE, "vehicle_ids": chosen})
    assert narrowed.json()["response"]["ids"] == chosen
    listed = client.get("/api/1/subscriptions", params=DEVICE).json()
    assert listed["response"]["ids"] == chosen
    other_device = client.get(
        "/api/1/subscriptions", params={**DEVICE, "device_token": "another-phone"}
    ).json()
    assert other_device["response"]["ids"] == []


@pytest.mark.parametrize(
    ("path", "body", "fragment"),
    [
        ("/api/1/subscriptions", {"device_type": "android"}, "missing device_token"),
        ("/api/1/subscriptions", {**DEVICE, "device_type": "windows-phone"}, "device_type"),
        ("/api/1/vehicle_subscriptions", {**DEVICE, "vehicle_ids": "all"}, "vehicle_ids"),
        ("/api/1/vehicle_subscriptions", {**DEVICE, "vehicle_ids": [1, 2]}, "unknown vehicle"),
    ],
)
def test_bad_registrations_are_400(
    client: httpx.Client, path: str, body: dict[str, object], fragment: str
) -> None:
    response = client.post(path, json=body)
    assert response.status_code == 400
    assert fragment in response.json()["error_description"]


def test_needs_user_data_scope(live: LiveDemo) -> None:
    headers = {"Authorization": f"Bearer {live.mint(['vehicle_device_data'])}"}
    response = httpx.post(
        f"{live.base_url}/api/1/subscriptions", json=DEVICE, headers=headers, timeout=10
    )
    assert response.status_code == 403
