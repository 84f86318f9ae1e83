"""Vehicle information endpoints against a live demo: real data, Tesla's shapes and errors."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest

from flotta.auth.scopes import OWNER_SCOPES
from flotta.devices.service import ensure_owner
from flotta.gateway.protocol import PowerState
from flotta.sim.route import distance_mi
from flotta.vehicles.charging_sites import SITES, available_stalls
from tests.live import LiveDemo


def client_for(live: LiveDemo, token: str) -> httpx.Client:
    headers = {"Authorization": f"Bearer {token}"}
    return httpx.Client(base_url=live.base_url, headers=headers, timeout=15)


@pytest.fixture
def owner(live: LiveDemo) -> Iterator[httpx.Client]:
    with client_for(live, live.token) as c:
        yield c


@pytest.fixture
def stranger(live: LiveDemo) -> Iterator[httpx.Client]:
    """An account that owns no vehicle."""
    runtime = live.handle.runtime

    async def provision() -> str:
        async with runtime.sessions() as s, s.begin():
            email = f"stranger-{uuid.uuid4().hex[:10]}@example.com"
            return (await ensure_owner(s, email, "Stranger", runtime.clock)).uuid

    with client_for(live, runtime.tokens.mint(live.call(provision()), OWNER_SCOPES)) as c:
        yield c


def parked_vin(live: LiveDemo) -> str:
    """The demo's first car charges at home, so it stays online and in one place."""
    return live.vins[0]


def assert_error(response: httpx.Response, status: int, key: str, *words: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["response"] is None and body["error"] == key
    text = f"{body['error']} {body['error_description']}".lower()
    for word in words:
        assert word.lower() in text, text


def mirror(live: LiveDemo, vin: str) -> dict[str, object]:
    async def read() -> dict[str, object]:
        return dict(live.handle.runtime.hub.online_session(vin).mirror)

    return live.call(read())


def test_mobile_enabled(owner: httpx.Client, live: LiveDemo) -> None:
    response = owner.get(f"/api/1/vehicles/{parked_vin(live)}/mobile_enabled")
    assert response.status_code == 200
    assert response.json() == {"response": {"reason": "", "result": True}}
    with client_for(live, live.mint(["vehicle_device_data"])) as read_only:
        denied = read_only.get(f"/api/1/vehicles/{parked_vin(live)}/mobile_enabled")
        assert_error(denied, 403, "Unauthorized missing scopes", "vehicle_cmds")


def test_nearby_sites_sorted_by_distance_from_the_car(owner: httpx.Client, live: LiveDemo) -> None:
    vin = parked_vin(live)
    body = owner.get(f"/api/1/vehicles/{vin}/nearby_charging_sites").json()["response"]
    location = mirror(live, vin)["Location"]
    assert isinstance(location, dict)
    assert len(body["superchargers"]) + len(body["destination_charging"]) == len(SITES)
    for kind in ("superchargers", "destination_charging"):
        distances = [s["distance_miles"] for s in body[kind]]
        assert distances == sorted(distances)
        first = body[kind][0]
        expected = distance_mi(
            location["latitude"],
            location["longitude"],
            first["location"]["lat"],
            first["location"]["long"],
        )
        assert first["distance_miles"] == pytest.approx(expected, abs=0.01)
    for site in body["superchargers"]:
        assert site["type"] == "supercharger" and not site["site_closed"]
        assert 0 <= site["available_stalls"] <= site["total_stalls"]
        assert "amenities" not in site
    assert all(s["type"] == "destination" for s in body["destination_charging"])
    assert body["timestamp"] > 0 and body["congestion_sync_time_utc_secs"] > 0


def test_nearby_sites_honour_count_radius_and_detail(owner: httpx.Client, live: LiveDemo) -> None:
    url = f"/api/1/vehicles/{parked_vin(live)}/nearby_charging_sites"
    limited = owner.get(url, params={"count": 2, "detail": "true"}).json()["response"]
    assert len(limited["superchargers"]) == 2 and len(limited["destination_charging"]) == 2
    assert all("amenities" in s and "billing_info" in s for s in limited["superchargers"])
    everything = owner.get(url).json()["response"]
    assert limited["superchargers"][0]["name"] == everything["superchargers"][0]["name"]
    near = owner.get(url, params={"radius": 3}).json()["response"]
    kept = near["superchargers"] + near["destination_charging"]
    assert kept and all(s["distance_miles"] <= 3 for s in kept)
    assert len(kept) < len(SITES)


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"count": 0}, "count"),
        ({"count": "many"}, "count"),
        ({"count": 51}, "count"),
        ({"radius": -1}, "radius"),
        ({"radius": 10_000}, "radius"),
        ({"detail": "perhaps"}, "detail"),
    ],
)
def test_nearby_sites_validation(
    owner: httpx.Client, live: LiveDemo, params: dict[str, object], field: str
) -> None:
    url = f"/api/1/vehicles/{parked_vin(live)}/nearby_charging_sites"
    assert_error(owner.get(url, params=params), 400, "invalid_request", field)  # type: ignore[arg-type]


def test_stall_availability_varies_by_time_of_day_but_totals_do_not() -> None:
    site = max(SITES, key=lambda s: s.total_stalls)
    # 04:00 and 18:00 Pacific (UTC-8 in the catalogue's solar time) are the trough and the peak.
    night = available_stalls(site, datetime(2026, 11, 22, 12, 0, tzinfo=UTC))
    evening = available_stalls(site, datetime(2026, 11, 23, 2, 0, tzinfo=UTC))
    assert night > evening
    assert 0 <= evening <= night <= site.total_stalls


def test_recent_alerts_come_from_the_car(owner: httpx.Client, live: LiveDemo) -> None:
    vin = parked_vin(live)
    url = f"/api/1/vehicles/{vin}/recent_alerts"
    assert owner.get(url).json() == {"response": {"recent_alerts": []}}
    alert = {
        "name": "Name_Of_The_Alert",
        "time": "2026-11-22T10:00:00Z",
        "audience": ["service-fix", "customer"],
        "user_text": "add more washer fluid",
    }

    async def set_alerts(value: object) -> None:
        session = live.handle.runtime.hub.online_session(vin)
        if value is None:
            session.mirror.pop("Alerts", None)
        else:
            session.mirror["Alerts"] = value

    live.call(set_alerts([alert, {"no": "name"}]))
    try:
        assert owner.get(url).json()["response"] == {"recent_alerts": [alert]}
    finally:
        live.call(set_alerts(None))


def test_release_notes_for_installed_and_staged_firmware(
    owner: httpx.Client, live: LiveDemo
) -> None:
    vin = parked_vin(live)
    state = mirror(live, vin)
    installed = owner.get(f"/api/1/vehicles/{vin}/release_notes").json()["response"]
    notes = installed["release_notes"]
    assert notes and {n["customer_version"] for n in notes} == {str(state["Version"]).split()[0]}
    assert set(notes[0]) == {
        "title",
        "subtitle",
        "description",
        "customer_version",
        "icon",
        "image_url",
        "light_image_url",
    }
    staged = owner.get(
        f"/api/1/vehicles/{vin}/release_notes", params={"staged": "true", "language": 1}
    ).json()["response"]["release_notes"]
    pending = str(state.get("SoftwareUpdateVersion") or "")
    if pending:
        assert {n["customer_version"] for n in staged} == {pending.split()[0]}
    else:
        assert staged == []


@pytest.mark.parametrize(
    ("params", "field"), [({"staged": "maybe"}, "staged"), ({"language": "en"}, "language")]
)
def test_release_notes_validation(
    owner: httpx.Client, live: LiveDemo, params: dict[str, str], field: str
) -> None:
    response = owner.get(f"/api/1/vehicles/{parked_vin(live)}/release_notes", params=params)
    assert_error(response, 400, "invalid_request", field)


def test_service_data(owner: httpx.Client, live: LiveDemo) -> None:
    body = owner.get(f"/api/1/vehicles/{parked_vin(live)}/service_data").json()["response"]
    assert body["service_status"] == "not_in_service"


def test_options_list_the_vehicles_codes_with_names(owner: httpx.Client, live: LiveDemo) -> None:
    vin = parked_vin(live)
    record = owner.get(f"/api/1/vehicles/{vin}").json()["response"]
    codes = owner.get("/api/1/dx/vehicles/options", params={"vin": vin}).json()["response"]["codes"]
    assert [c["code"] for c in codes] == [f"${c}" for c in record["option_codes"].split(",")]
    assert all(c["displayName"] and c["displayName"] != c["code"][1:] for c in codes)
    paint = next(c for c in codes if "colorCode" in c)
    assert paint["code"] == f"${paint['colorCode']}"


@pytest.mark.parametrize(
    "path",
    [
        "/api/1/dx/vehicles/options",
        "/api/1/dx/vehicles/subscriptions/eligibility",
        "/api/1/dx/vehicles/upgrades/eligibility",
    ],
)
def test_dx_endpoints_need_a_valid_vin(owner: httpx.Client, path: str) -> None:
    assert_error(owner.get(path), 400, "invalid_request", "vin")
    assert_error(owner.get(path, params={"vin": "short"}), 400, "invalid_request", "vin")
    assert_error(owner.get(path, params={"vin": "5YJ3E1EB0TF999999"}), 404, "not_found")


def test_warranty_from_delivery_date_and_model(owner: httpx.Client, live: LiveDemo) -> None:
    vin = live.vins[3]  # the Cybertruck: 150k-mile battery cover
    one = owner.get("/api/1/dx/warranty/details", params={"vin": vin}).json()["response"]
    active = {w["warrantyType"]: w for w in one["activeWarranty"]}
    assert set(active) == {"NEW_MFG_WARRANTY", "BATTERY_WARRANTY", "DRIVEUNIT_WARRANTY"}
    assert one["expiredWarranty"] == [] and one["upcomingWarranty"] == []
    assert active["NEW_MFG_WARRANTY"]["expirationOdometer"] == 50_000
    assert active["BATTERY_WARRANTY"]["expirationOdometer"] == 150_000
    assert active["BATTERY_WARRANTY"]["odometerUnit"] == "MI"
    basic = datetime.fromisoformat(active["NEW_MFG_WARRANTY"]["expirationDate"])
    battery = datetime.fromisoformat(active["BATTERY_WARRANTY"]["expirationDate"])
    assert battery.year - basic.year == 4
    assert basic.year - datetime.now(UTC).year in (3, 4)
    everything = owner.get("/api/1/dx/warranty/details").json()["response"]
    assert {w["vin"] for w in everything["activeWarranty"]} == set(live.vins)
    model3 = next(
        w
        for w in everything["activeWarranty"]
        if w["vin"] == live.vins[0] and w["warrantyType"] == "BATTERY_WARRANTY"
    )
    assert model3["expirationOdometer"] == 120_000


def test_eligibility_follows_model_and_options(owner: httpx.Client, live: LiveDemo) -> None:
    model3, plaid = live.vins[0], live.vins[2]
    subs = owner.get("/api/1/dx/vehicles/subscriptions/eligibility", params={"vin": model3}).json()[
        "response"
    ]
    assert subs["vin"] == model3 and subs["country"] == "US"
    # The demo cars bought FSD (APF2), so only connectivity is still on offer.
    assert [e["product"] for e in subs["eligible"]] == ["Premium Connectivity"]
    assert subs["eligible"][0]["billingOptions"][0]["billingPeriod"] == "MONTHLY"
    upgrades = owner.get("/api/1/dx/vehicles/upgrades/eligibility", params={"vin": model3}).json()[
        "response"
    ]
    assert upgrades["type"] == "VEHICLE"
    assert upgrades["eligible"][0]["currentOptionCode"] == "$MT353"
    none = owner.get("/api/1/dx/vehicles/upgrades/eligibility", params={"vin": plaid}).json()
    assert none["response"]["eligible"] == []


def test_specs_for_owner_and_partner(owner: httpx.Client, live: LiveDemo) -> None:
    vin = live.vins[2]  # Model S Plaid
    specs = owner.get(f"/api/1/vehicles/{vin}/specs").json()["response"]
    assert specs["vin"] == vin and specs["model"] == "models"
    assert specs["battery"]["capacity_kwh"] == 95.0
    assert specs["drive"] == {"type": "AWD", "motors": 3}
    assert specs["model_year"] == 2026
    runtime = live.handle.runtime
    with client_for(live, runtime.tokens.mint("partner-app", [], partner=True)) as partner:
        assert partner.get(f"/api/1/vehicles/{vin}/specs").json()["response"] == specs
        assert_error(partner.get("/api/1/vehicles/5YJ3E1EB0TF999999/specs"), 404, "not_found")
    with client_for(live, live.mint(["vehicle_cmds"])) as no_data:
        assert_error(
            no_data.get(f"/api/1/vehicles/{vin}/specs"), 403, "Unauthorized missing scopes"
        )


def test_fleet_status_reports_own_vins_only(owner: httpx.Client, live: LiveDemo) -> None:
    unknown = "5YJ3E1EB0TF999999"
    body = owner.post("/api/1/vehicles/fleet_status", json={"vins": [*live.vins, unknown]}).json()[
        "response"
    ]
    # The demo's cars have its apps' keys paired (flotta.demo.DEMO_PAIRING).
    assert body["key_paired_vins"] == live.vins
    assert body["unpaired_vins"] == []
    assert set(body["vehicle_info"]) == set(live.vins)
    info = body["vehicle_info"][live.vins[0]]
    assert info["firmware_version"] == str(mirror(live, live.vins[0])["Version"]).split()[0]
    assert info["vehicle_command_protocol_required"] is False
    assert "discounted_device_data" not in info
    # A car with the app's key paired holds at least that key.
    assert all(body["vehicle_info"][vin]["total_number_of_keys"] >= 1 for vin in live.vins)
    single = owner.post("/api/1/vehicles/fleet_status", json={"vins": [live.vins[0]]}).json()
    assert single["response"]["vehicle_info"][live.vins[0]]["discounted_device_data"] is False


def test_fleet_status_hides_other_accounts_vehicles(stranger: httpx.Client, live: LiveDemo) -> None:
    body = stranger.post("/api/1/vehicles/fleet_status", json={"vins": live.vins}).json()
    assert body["response"] == {"key_paired_vins": [], "unpaired_vins": [], "vehicle_info": {}}


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"vins": []},
        {"vins": "5YJ3E1EB0TF999999"},
        {"vins": ["short"]},
        {"vins": [1]},
        {"vins": ["5YJ3E1EB0TF999999"] * 101},
    ],
)
def test_fleet_status_validation(owner: httpx.Client, body: object) -> None:
    response = owner.post("/api/1/vehicles/fleet_status", json=body)
    assert_error(response, 400, "invalid_field", "vins")


VEHICLE_PATHS = (
    "mobile_enabled",
    "nearby_charging_sites",
    "recent_alerts",
    "release_notes",
    "service_data",
    "specs",
)


@pytest.mark.parametrize("path", VEHICLE_PATHS)
def test_another_accounts_vehicle_is_not_found(
    stranger: httpx.Client, live: LiveDemo, path: str
) -> None:
    assert_error(stranger.get(f"/api/1/vehicles/{live.vins[0]}/{path}"), 404, "not_found")


@pytest.mark.parametrize(
    "path",
    [
        "/api/1/dx/vehicles/options",
        "/api/1/dx/warranty/details",
        "/api/1/dx/vehicles/subscriptions/eligibility",
        "/api/1/dx/vehicles/upgrades/eligibility",
    ],
)
def test_another_accounts_vin_is_not_found_in_dx(
    stranger: httpx.Client, live: LiveDemo, path: str
) -> None:
    assert_error(stranger.get(path, params={"vin": live.vins[0]}), 404, "not_found")


def test_live_endpoints_need_the_car_online(owner: httpx.Client, live: LiveDemo) -> None:
    vin = live.vins[3]

    async def set_power(power: PowerState) -> None:
        session = live.handle.runtime.hub.sessions[vin]
        session.set_power(power)

    live.call(set_power(PowerState.ASLEEP))
    try:
        for path in ("mobile_enabled", "nearby_charging_sites"):
            response = owner.get(f"/api/1/vehicles/{vin}/{path}")
            assert_error(response, 408, "vehicle unavailable: vehicle is offline or asleep")
        # Answered from the server's records, so a sleeping car does not matter.
        assert owner.get(f"/api/1/vehicles/{vin}/release_notes").status_code == 200
        assert owner.get(f"/api/1/vehicles/{vin}/service_data").status_code == 200
    finally:
        live.call(set_power(PowerState.ONLINE))
