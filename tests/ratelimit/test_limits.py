"""Rate limits as a client meets them: 429 in Tesla's envelope, per app, device and category."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from flotta.auth.scopes import OWNER_SCOPES
from tests.live import LiveDemo, start_live_demo

LIMITS = {"data": "3/minute", "commands": "2/minute", "wakes": "1/minute", "token": "3/minute"}


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveDemo]:
    """One demo with tiny limits for this module (each test starts with fresh budgets)."""
    demo = start_live_demo(tmp_path_factory.mktemp("limited"), ratelimit=LIMITS)
    try:
        yield demo
    finally:
        demo.stop()


@pytest.fixture
def demo(limited: LiveDemo) -> LiveDemo:
    limiter = limited.handle.runtime.limiter
    assert limiter is not None
    limited.call(limiter.clear())
    return limited


@pytest.fixture
def client(demo: LiveDemo) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {demo.token}"}
    with httpx.Client(base_url=demo.base_url, headers=headers, timeout=15) as c:
        yield c


def read(client: httpx.Client, tag: str) -> httpx.Response:
    return client.get(f"/api/1/vehicles/{tag}/vehicle_data")


def assert_limited(response: httpx.Response, limit: int, window_s: int) -> None:
    assert response.status_code == 429, response.text
    body = response.json()
    assert body["response"] is None
    assert body["error"] == "rate limit exceeded"
    assert body["error_description"].startswith("Retry in ")
    retry = int(response.headers["Retry-After"])
    assert 1 <= retry <= window_s
    assert int(response.headers["RateLimit-Reset"]) == retry
    assert response.headers["RateLimit-Limit"] == str(limit)
    assert response.headers["RateLimit-Remaining"] == "0"


def test_data_budget_ends_in_429_with_retry_after(client: httpx.Client, demo: LiveDemo) -> None:
    vin = demo.vins[0]
    served = [read(client, vin) for _ in range(3)]
    assert [r.status_code for r in served] == [200, 200, 200]
    # Like Tesla in 2024, served responses carry no RateLimit-* headers.
    assert "RateLimit-Limit" not in served[0].headers
    assert_limited(read(client, vin), 3, 60)


def test_each_car_has_its_own_budget(client: httpx.Client, demo: LiveDemo) -> None:
    first, second = demo.vins[0], demo.vins[1]
    for _ in range(3):
        assert read(client, first).status_code == 200
    assert read(client, first).status_code == 429
    assert read(client, second).status_code == 200


def test_vin_and_fleet_id_share_one_budget(client: httpx.Client, demo: LiveDemo) -> None:
    vin = demo.vins[0]
    fleet_id = client.get(f"/api/1/vehicles/{vin}").json()["response"]["id"]
    tags = [vin, str(fleet_id), vin]
    assert [read(client, tag).status_code for tag in tags] == [200, 200, 200]
    assert_limited(read(client, str(fleet_id)), 3, 60)
    assert read(client, vin).status_code == 429


def test_each_app_has_its_own_budget(client: httpx.Client, demo: LiveDemo) -> None:
    vin = demo.vins[0]
    for _ in range(3):
        assert read(client, vin).status_code == 200
    assert read(client, vin).status_code == 429
    other_app = demo.mint(OWNER_SCOPES)  # `flotta token`'s client_id, not the demo app's
    answer = client.get(
        f"/api/1/vehicles/{vin}/vehicle_data", headers={"Authorization": f"Bearer {other_app}"}
    )
    assert answer.status_code == 200, answer.text


def test_categories_have_separate_budgets(client: httpx.Client, demo: LiveDemo) -> None:
    vin = demo.vins[2]
    for _ in range(3):
        assert read(client, vin).status_code == 200
    assert read(client, vin).status_code == 429
    honk = f"/api/1/vehicles/{vin}/command/flash_lights"
    assert [client.post(honk, json={}).status_code for _ in range(2)] == [200, 200]
    assert_limited(client.post(honk, json={}), 2, 60)
    assert client.post(f"/api/1/vehicles/{vin}/wake_up").status_code == 200
    assert_limited(client.post(f"/api/1/vehicles/{vin}/wake_up"), 1, 60)


def test_free_operations_are_never_limited(client: httpx.Client, demo: LiveDemo) -> None:
    vin = demo.vins[0]
    for _ in range(4):
        read(client, vin)
    assert read(client, vin).status_code == 429
    for path in ("/api/1/vehicles", f"/api/1/vehicles/{vin}", "/api/1/products", "/status"):
        codes = {client.get(path).status_code for _ in range(6)}
        assert codes == {200}, path


def test_refused_requests_keep_their_status_and_spend_nothing(
    client: httpx.Client, demo: LiveDemo
) -> None:
    vin = demo.vins[3]
    with httpx.Client(base_url=demo.base_url, timeout=15) as anonymous:
        assert {read(anonymous, vin).status_code for _ in range(5)} == {401}
    bad = {"Authorization": "Bearer not-a-token"}
    assert {client.get(f"/api/1/vehicles/{vin}/vehicle_data", headers=bad).status_code} == {401}
    assert {read(client, "5YJ3E1EA0KF000000").status_code for _ in range(5)} == {404}
    assert {read(client, "not-a-tag!").status_code for _ in range(5)} <= {400, 404}
    # None of those counted: the car's whole budget is still there.
    assert [read(client, vin).status_code for _ in range(3)] == [200, 200, 200]


def test_token_endpoint_is_limited_per_app(demo: LiveDemo) -> None:
    form = {"grant_type": "refresh_token", "refresh_token": "nope", "client_id": "some-app"}
    with httpx.Client(base_url=demo.base_url, timeout=15) as c:
        served = [c.post("/oauth2/v3/token", data=form) for _ in range(3)]
        assert all(r.status_code in (400, 401) for r in served), [r.text for r in served]
        refused = c.post("/oauth2/v3/token", data=form)
        assert refused.status_code == 429
        assert refused.json()["error"] == "rate_limited"
        assert 1 <= int(refused.headers["Retry-After"]) <= 60
        assert refused.headers["RateLimit-Limit"] == "3"
        other = c.post("/oauth2/v3/token", data={**form, "client_id": "another-app"})
        assert other.status_code != 429
        # The refused request never reached the endpoint; the body still does for others.
        assert other.json()["error"] != "rate_limited"


def test_token_requests_without_client_id_count_per_address(demo: LiveDemo) -> None:
    with httpx.Client(base_url=demo.base_url, timeout=15) as c:
        codes = [c.post("/oauth2/v3/token", data={"grant_type": "x"}).status_code for _ in range(4)]
    assert codes[:3] == [400, 400, 400] and codes[3] == 429


def test_switched_off_limits_refuse_nothing(tmp_path: Path) -> None:
    demo = start_live_demo(tmp_path, vehicles=1, ratelimit={"enabled": False, "data": "1/minute"})
    try:
        assert demo.handle.runtime.limiter is None
        headers = {"Authorization": f"Bearer {demo.token}"}
        with httpx.Client(base_url=demo.base_url, headers=headers, timeout=15) as c:
            assert {read(c, demo.vins[0]).status_code for _ in range(4)} == {200}
    finally:
        demo.stop()


def test_a_counted_token_request_reaches_the_endpoint_intact(demo: LiveDemo) -> None:
    form = {
        "grant_type": "refresh_token",
        "refresh_token": demo.info["refresh_token"],
        "client_id": demo.info["client_id"],
        "client_secret": demo.info["client_secret"],
    }
    with httpx.Client(base_url=demo.base_url, timeout=15) as c:
        answer = c.post("/oauth2/v3/token", data=form)
    assert answer.status_code == 200, answer.text
    assert answer.json()["access_token"]


def test_energy_site_reads_are_limited_per_site(client: httpx.Client, demo: LiveDemo) -> None:
    sites = demo.info["energy_sites"]
    assert sites, "the demo provisions energy sites"
    path = f"/api/1/energy_sites/{sites[0]}/site_info"
    assert [client.get(path).status_code for _ in range(3)] == [200, 200, 200]
    assert_limited(client.get(path), 3, 60)
    if len(sites) > 1:
        assert client.get(f"/api/1/energy_sites/{sites[1]}/site_info").status_code == 200
