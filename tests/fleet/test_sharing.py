"""Share invitations and drivers as clients use them, against a live demo server."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx
import pytest

from flotta.auth.scopes import OWNER_SCOPES
from flotta.devices.service import ensure_owner
from flotta.sharing import service
from flotta.sharing.repository import InvitationRepository
from tests.live import LiveDemo


@dataclass(frozen=True)
class Account:
    user_id: int
    email: str
    client: httpx.Client


def make_account(live: LiveDemo, email: str | None = None) -> Account:
    """A second account that owns nothing, with an owner-scoped token."""
    email = email or f"driver-{uuid.uuid4().hex[:10]}@example.com"
    runtime = live.handle.runtime

    async def provision() -> tuple[str, int]:
        async with runtime.sessions() as s, s.begin():
            user = await ensure_owner(s, email, "Dana Driver", runtime.clock)
            return user.uuid, user.id

    subject, user_id = live.call(provision())
    token = runtime.tokens.mint(subject, OWNER_SCOPES)
    headers = {"Authorization": f"Bearer {token}"}
    return Account(
        user_id, email, httpx.Client(base_url=live.base_url, headers=headers, timeout=15)
    )


@pytest.fixture
def owner(live: LiveDemo) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {live.token}"}
    with httpx.Client(base_url=live.base_url, headers=headers, timeout=15) as c:
        yield c


@pytest.fixture
def other(live: LiveDemo) -> Iterator[Account]:
    account = make_account(live)
    with account.client:
        yield account


def invite(owner: httpx.Client, vin: str) -> dict[str, object]:
    response = owner.post(f"/api/1/vehicles/{vin}/invitations")
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()["response"]
    return body


def drivers_of(owner: httpx.Client, vin: str) -> list[dict[str, object]]:
    body = owner.get(f"/api/1/vehicles/{vin}/drivers").json()
    assert body["count"] == len(body["response"])
    items: list[dict[str, object]] = body["response"]
    return items


def assert_error(response: httpx.Response, status: int, key: str, *words: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["response"] is None
    assert body["error"] == key
    text = f"{body['error']} {body['error_description']}".lower()
    for word in words:
        assert word.lower() in text, text


def test_invitation_has_teslas_shape_and_a_link_to_this_server(
    owner: httpx.Client, live: LiveDemo
) -> None:
    vin = live.vins[0]
    inv = invite(owner, vin)
    assert inv["state"] == "pending"
    assert inv["vin"] == inv["product_id"] == vin
    assert inv["product_type"] == "vehicle" and inv["share_type"] == "customer"
    assert inv["id_s"] == str(inv["id"]) and inv["share_user_id"] is None
    assert inv["share_link"] == f"{live.base_url}/_rs/1/{inv['code']}"
    expires = datetime.fromisoformat(str(inv["expires_at"]).replace("Z", "+00:00"))
    left = expires - live.handle.runtime.clock.now()
    assert timedelta(hours=23, minutes=59) < left <= timedelta(hours=24)
    listed = owner.get(f"/api/1/vehicles/{vin}/invitations").json()
    assert listed["count"] == len(listed["response"])
    assert listed["response"][0]["id"] == inv["id"]


def test_lifecycle_invite_redeem_list_remove(
    owner: httpx.Client, other: Account, live: LiveDemo
) -> None:
    vin = live.vins[1]
    inv = invite(owner, vin)
    redeemed = other.client.post("/api/1/invitations/redeem", json={"code": inv["code"]})
    assert redeemed.status_code == 200, redeemed.text
    vehicle = owner.get(f"/api/1/vehicles/{vin}").json()["response"]
    assert redeemed.json()["response"] == {
        "vehicle_id_s": str(vehicle["vehicle_id"]),
        "vin": vin,
    }
    driver = next(d for d in drivers_of(owner, vin) if d["user_id"] == other.user_id)
    assert driver["user_id_s"] == str(other.user_id)
    assert driver["driver_first_name"] == "Dana" and driver["driver_last_name"] == "Driver"
    assert driver["granular_access"] == {"hide_private": False}
    states = {
        i["id"]: i for i in owner.get(f"/api/1/vehicles/{vin}/invitations").json()["response"]
    }
    assert states[inv["id"]]["state"] == "redeemed"
    assert states[inv["id"]]["share_user_id"] == other.user_id

    again = other.client.post("/api/1/invitations/redeem", json={"code": inv["code"]})
    assert_error(again, 400, "invalid_request", "code", "already been used")

    removed = owner.delete(
        f"/api/1/vehicles/{vin}/drivers", params={"share_user_id": other.user_id}
    )
    assert removed.status_code == 200 and removed.json() == {"response": "ok"}
    assert all(d["user_id"] != other.user_id for d in drivers_of(owner, vin))


def test_redeem_accepts_tesla_fleet_api_query_form_and_driver_removes_self(
    owner: httpx.Client, other: Account, live: LiveDemo
) -> None:
    vin = live.vins[1]
    code = str(invite(owner, vin)["code"])
    # tesla-fleet-api sends the code as both key and value of the query, with no body.
    redeemed = other.client.post(f"/api/1/invitations/redeem?{code}={code}")
    assert redeemed.status_code == 200, redeemed.text
    assert redeemed.json()["response"]["vin"] == vin

    runtime = live.handle.runtime

    async def visible() -> set[int]:
        async with runtime.sessions() as s:
            return await service.accessible_vehicle_ids(s, other.user_id)

    vehicle_id = owner.get(f"/api/1/vehicles/{vin}").json()["response"]["id"]
    assert live.call(visible()) == {vehicle_id}

    # A driver may remove themself, but not list the owner's drivers.
    assert_error(other.client.get(f"/api/1/vehicles/{vin}/drivers"), 404, "not_found")
    gone = other.client.delete(
        f"/api/1/vehicles/{vin}/drivers", params={"share_user_id": other.user_id}
    )
    assert gone.status_code == 200, gone.text
    assert live.call(visible()) == set()
    after = other.client.delete(
        f"/api/1/vehicles/{vin}/drivers", params={"share_user_id": other.user_id}
    )
    assert_error(after, 404, "not_found")


def test_driver_cannot_remove_another_driver(owner: httpx.Client, live: LiveDemo) -> None:
    vin = live.vins[2]
    first, second = make_account(live), make_account(live)
    with first.client, second.client:
        for account in (first, second):
            code = invite(owner, vin)["code"]
            ok = account.client.post("/api/1/invitations/redeem", json={"code": code})
            assert ok.status_code == 200, ok.text
        refused = first.client.delete(
            f"/api/1/vehicles/{vin}/drivers", params={"share_user_id": second.user_id}
        )
        assert_error(refused, 403, "forbidden", "owner")
        for account in (first, second):
            owner.delete(
                f"/api/1/vehicles/{vin}/drivers", params={"share_user_id": account.user_id}
            )
    assert drivers_of(owner, vin) == []


def test_redeeming_your_own_vehicles_invite_is_refused(owner: httpx.Client, live: LiveDemo) -> None:
    code = invite(owner, live.vins[0])["code"]
    response = owner.post("/api/1/invitations/redeem", json={"code": code})
    assert_error(response, 400, "invalid_request", "code", "own vehicle")


def test_revoked_invite_cannot_be_redeemed(
    owner: httpx.Client, other: Account, live: LiveDemo
) -> None:
    vin = live.vins[0]
    inv = invite(owner, vin)
    revoked = owner.post(f"/api/1/vehicles/{vin}/invitations/{inv['id']}/revoke")
    assert revoked.status_code == 200 and revoked.json()["response"] is True
    listed = owner.get(f"/api/1/vehicles/{vin}/invitations").json()["response"]
    entry = next(i for i in listed if i["id"] == inv["id"])
    assert entry["state"] == "revoked" and entry["revoked_at"] is not None
    response = other.client.post("/api/1/invitations/redeem", json={"code": inv["code"]})
    assert_error(response, 400, "invalid_request", "code", "revoked")


def test_revoking_a_redeemed_invite_ends_the_drivers_access(
    owner: httpx.Client, other: Account, live: LiveDemo
) -> None:
    vin = live.vins[0]
    inv = invite(owner, vin)
    assert other.client.post("/api/1/invitations/redeem", json={"code": inv["code"]}).is_success
    assert any(d["user_id"] == other.user_id for d in drivers_of(owner, vin))
    owner.post(f"/api/1/vehicles/{vin}/invitations/{inv['id']}/revoke")
    assert all(d["user_id"] != other.user_id for d in drivers_of(owner, vin))


def test_expired_invite_cannot_be_redeemed(
    owner: httpx.Client, other: Account, live: LiveDemo
) -> None:
    vin = live.vins[0]
    inv = invite(owner, vin)
    vehicle_id = int(owner.get(f"/api/1/vehicles/{vin}").json()["response"]["id"])
    runtime = live.handle.runtime

    async def expire() -> None:
        async with runtime.sessions() as s, s.begin():
            row = await InvitationRepository(s).get(vehicle_id, int(str(inv["id"])))
            assert row is not None
            row.expires_at = runtime.clock.now() - timedelta(minutes=1)

    live.call(expire())
    response = other.client.post("/api/1/invitations/redeem", json={"code": inv["code"]})
    assert_error(response, 400, "invalid_request", "code", "expired")


@pytest.mark.parametrize(
    ("kwargs", "status", "key", "words"),
    [
        ({"json": {"code": "NoSuchCode12345"}}, 404, "not_found", ("code",)),
        ({"json": {"code": "bad code!"}}, 400, "invalid_request", ("code",)),
        ({"json": {"code": 12345678}}, 400, "invalid_request", ("code",)),
        ({"json": {}}, 400, "invalid_request", ("code",)),
        (
            {"content": b"{not json", "headers": {"content-type": "application/json"}},
            400,
            "invalid_request",
            ("json",),
        ),
        ({"json": ["code"]}, 400, "invalid_request", ("object",)),
    ],
)
def test_redeem_rejects_bad_codes(
    other: Account, kwargs: dict[str, object], status: int, key: str, words: tuple[str, ...]
) -> None:
    response = other.client.post("/api/1/invitations/redeem", **kwargs)  # type: ignore[arg-type]
    assert_error(response, status, key, *words)


def test_at_most_five_drivers(owner: httpx.Client, live: LiveDemo) -> None:
    vin = live.vins[3]
    accounts = [make_account(live) for _ in range(5)]
    try:
        for account in accounts:
            code = invite(owner, vin)["code"]
            ok = account.client.post("/api/1/invitations/redeem", json={"code": code})
            assert ok.status_code == 200, ok.text
        assert len(drivers_of(owner, vin)) == 5
        refused = owner.post(f"/api/1/vehicles/{vin}/invitations")
        assert_error(refused, 400, "invalid_request", "maximum of 5 drivers")
        by_email = owner.post(f"/api/1/vehicles/{vin}/drivers", json={"email": "x@example.com"})
        assert_error(by_email, 400, "invalid_request", "maximum of 5 drivers")
    finally:
        for account in accounts:
            owner.delete(
                f"/api/1/vehicles/{vin}/drivers", params={"share_user_id": account.user_id}
            )
            account.client.close()
    assert drivers_of(owner, vin) == []


def test_add_driver_by_email_invites_only_that_account(
    owner: httpx.Client, other: Account, live: LiveDemo
) -> None:
    vin = live.vins[0]
    created = owner.post(f"/api/1/vehicles/{vin}/drivers", json={"email": other.email})
    assert created.status_code == 200, created.text
    inv = created.json()["response"]
    assert inv["state"] == "pending" and inv["vin"] == vin
    stranger = make_account(live)
    with stranger.client:
        wrong = stranger.client.post("/api/1/invitations/redeem", json={"code": inv["code"]})
        assert_error(wrong, 400, "invalid_request", "another account")
    ok = other.client.post("/api/1/invitations/redeem", json={"code": inv["code"]})
    assert ok.status_code == 200, ok.text
    owner.delete(f"/api/1/vehicles/{vin}/drivers", params={"share_user_id": other.user_id})


@pytest.mark.parametrize("body", [{}, {"email": "not-an-address"}, {"email": 7}, {"email": ""}])
def test_add_driver_needs_an_email(owner: httpx.Client, live: LiveDemo, body: object) -> None:
    response = owner.post(f"/api/1/vehicles/{live.vins[0]}/drivers", json=body)
    assert_error(response, 400, "invalid_request", "email")


@pytest.mark.parametrize(
    ("params", "status", "key", "words"),
    [
        ({}, 400, "invalid_request", ("share_user_id",)),
        ({"share_user_id": "abc"}, 400, "invalid_request", ("share_user_id",)),
        ({"share_user_id": "0"}, 400, "invalid_request", ("share_user_id",)),
        ({"share_user_id": "99999999"}, 404, "not_found", ("share_user_id",)),
    ],
)
def test_remove_driver_validates_share_user_id(
    owner: httpx.Client,
    live: LiveDemo,
    params: dict[str, str],
    status: int,
    key: str,
    words: tuple[str, ...],
) -> None:
    response = owner.delete(f"/api/1/vehicles/{live.vins[0]}/drivers", params=params)
    assert_error(response, status, key, *words)


def test_revoke_validates_the_invitation_id(owner: httpx.Client, live: LiveDemo) -> None:
    vin = live.vins[0]
    assert_error(
        owner.post(f"/api/1/vehicles/{vin}/invitations/abc/revoke"),
        400,
        "invalid_request",
        "invitation_id",
    )
    assert_error(
        owner.post(f"/api/1/vehicles/{vin}/invitations/987654321/revoke"),
        404,
        "not_found",
        "invitation",
    )


def test_another_accounts_vehicle_looks_absent(
    other: Account, owner: httpx.Client, live: LiveDemo
) -> None:
    vin = live.vins[0]
    inv = invite(owner, vin)
    base = f"/api/1/vehicles/{vin}"
    for response in (
        other.client.get(f"{base}/invitations"),
        other.client.post(f"{base}/invitations"),
        other.client.post(f"{base}/invitations/{inv['id']}/revoke"),
        other.client.get(f"{base}/drivers"),
        other.client.post(f"{base}/drivers", json={"email": "a@example.com"}),
        other.client.delete(f"{base}/drivers", params={"share_user_id": 1}),
    ):
        assert_error(response, 404, "not_found")


def test_scopes(live: LiveDemo) -> None:
    vin = live.vins[0]
    read_only = live.mint(["vehicle_device_data"])
    with httpx.Client(
        base_url=live.base_url, headers={"Authorization": f"Bearer {read_only}"}, timeout=15
    ) as c:
        assert c.get(f"/api/1/vehicles/{vin}/invitations").status_code == 200
        for response in (
            c.post(f"/api/1/vehicles/{vin}/invitations"),
            c.get(f"/api/1/vehicles/{vin}/drivers"),
            c.delete(f"/api/1/vehicles/{vin}/drivers", params={"share_user_id": 1}),
        ):
            assert_error(response, 403, "Unauthorized missing scopes", "vehicle_cmds")


def test_a_driver_sees_and_commands_the_shared_car_until_removed(live: LiveDemo) -> None:
    owner = {"Authorization": f"Bearer {live.token}"}
    vin = live.vins[3]
    account = make_account(live)
    account.client.close()
    driver = {"Authorization": account.client.headers["Authorization"]}
    base = live.base_url
    invite = httpx.post(f"{base}/api/1/vehicles/{vin}/invitations", headers=owner, timeout=10)
    code = invite.json()["response"]["code"]
    redeemed = httpx.post(
        f"{base}/api/1/invitations/redeem", json={"code": code}, headers=driver, timeout=10
    )
    assert redeemed.status_code == 200
    listed = httpx.get(f"{base}/api/1/vehicles", headers=driver, timeout=10).json()["response"]
    assert [(v["vin"], v["access_type"]) for v in listed] == [(vin, "DRIVER")]
    honk = httpx.post(
        f"{base}/api/1/vehicles/{vin}/command/flash_lights", headers=driver, timeout=10
    )
    assert honk.json()["response"]["result"] is True
    # Owner-only endpoints stay closed to drivers.
    assert (
        httpx.get(f"{base}/api/1/vehicles/{vin}/drivers", headers=driver, timeout=10).status_code
        == 404
    )
    drivers = httpx.get(f"{base}/api/1/vehicles/{vin}/drivers", headers=owner, timeout=10)
    assert account.user_id in [d["user_id"] for d in drivers.json()["response"]]
    share_user_id = account.user_id
    removed = httpx.delete(
        f"{base}/api/1/vehicles/{vin}/drivers",
        params={"share_user_id": share_user_id},
        headers=owner,
        timeout=10,
    )
    assert removed.json()["response"] == "ok"
    assert httpx.get(f"{base}/api/1/vehicles/{vin}", headers=driver, timeout=10).status_code == 404
