"""The energy endpoints as a client sees them: products, live data, settings and errors."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import httpx
import pytest

from flotta.accounts.models import User
from flotta.energy.service import provision_site
from tests.energy.support import (
    battery_site,
    client,
    on_site,
    response,
    simulator,
    solar_site,
)
from tests.live import LiveDemo

BASE = "/api/1/energy_sites"


@pytest.fixture
def api(live: LiveDemo) -> Iterator[httpx.Client]:
    with client(live) as c:
        yield c


def test_products_list_both_homes_after_the_vehicles(api: httpx.Client, live: LiveDemo) -> None:
    items = response(api.get("/api/1/products"))
    sites = [p for p in items if "energy_site_id" in p]
    assert [p["energy_site_id"] for p in sites] == live.info["energy_sites"]
    assert items[-2:] == sites  # vehicles first
    battery, solar = sites
    assert battery["resource_type"] == "battery" and solar["resource_type"] == "solar"
    assert battery["components"]["battery"] and battery["components"]["solar"]
    assert battery["components"]["load_meter"] is True
    assert battery["total_pack_energy"] == 27_000
    assert 0 <= battery["percentage_charged"] <= 100
    assert not solar["components"]["battery"]
    assert solar["components"]["wall_connectors"][0]["din"].startswith("1734411")
    assert all(p["device_type"] == "energy" and isinstance(p["id"], str) for p in sites)


def test_live_status_balances(api: httpx.Client, live: LiveDemo) -> None:
    live_status = response(api.get(f"{BASE}/{battery_site(live)}/live_status"))
    assert live_status["grid_status"] == "Active"
    assert live_status["island_status"] == "on_grid"
    supply = live_status["solar_power"] + live_status["grid_power"] + live_status["battery_power"]
    assert abs(supply - live_status["load_power"]) < 1.0  # W, after rounding each to 0.1
    assert live_status["timestamp"].endswith(("+01:00", "+02:00"))  # the site's zone


def test_writes_answer_updated_and_show_in_the_next_reads(
    api: httpx.Client, live: LiveDemo
) -> None:
    site = battery_site(live)
    writes = [
        ("backup", {"backup_reserve_percent": 42}),
        ("operation", {"default_real_mode": "autonomous"}),
        ("storm_mode", {"enabled": True}),
        (
            "grid_import_export",
            {
                "disallow_charge_from_grid_with_solar_installed": True,
                "customer_preferred_export_rule": "battery_ok",
            },
        ),
        ("off_grid_vehicle_charging_reserve", {"off_grid_vehicle_charging_reserve_percent": 35}),
    ]
    try:
        for name, body in writes:
            answer = api.post(f"{BASE}/{site}/{name}", json=body)
            assert answer.json() == {"response": {"code": 201, "message": "Updated"}}, name
        info = response(api.get(f"{BASE}/{site}/site_info"))
        assert info["backup_reserve_percent"] == 42
        assert info["default_real_mode"] == "autonomous"
        assert info["user_settings"]["storm_mode_enabled"] is True
        assert info["components"]["disallow_charge_from_grid_with_solar_installed"] is True
        assert info["components"]["customer_preferred_export_rule"] == "battery_ok"
        assert info["off_grid_vehicle_charging_reserve_percent"] == 35
        assert simulator(live, site).settings.mode == "autonomous"
    finally:
        api.post(f"{BASE}/{site}/backup", json={"backup_reserve_percent": 20})
        api.post(f"{BASE}/{site}/operation", json={"default_real_mode": "self_consumption"})
        api.post(f"{BASE}/{site}/storm_mode", json={"enabled": False})
        api.post(
            f"{BASE}/{site}/grid_import_export",
            json={
                "disallow_charge_from_grid_with_solar_installed": False,
                "customer_preferred_export_rule": "pv_only",
            },
        )


def test_storm_watch_shows_in_live_status(api: httpx.Client, live: LiveDemo) -> None:
    site = battery_site(live)
    on_site(live, site, lambda s: s.forecast_storm(True))
    try:
        api.post(f"{BASE}/{site}/storm_mode", json={"enabled": True})
        watching = response(api.get(f"{BASE}/{site}/live_status"))
        assert watching["storm_mode_active"] is True
        assert watching["battery_power"] <= 0  # filling up (or full), never discharging
        api.post(f"{BASE}/{site}/storm_mode", json={"enabled": False})
        assert response(api.get(f"{BASE}/{site}/live_status"))["storm_mode_active"] is False
    finally:
        on_site(live, site, lambda s: s.forecast_storm(False))


def test_grid_import_export_accepts_one_member_or_nulls(api: httpx.Client, live: LiveDemo) -> None:
    site = battery_site(live)
    body = {"disallow_charge_from_grid_with_solar_installed": None}
    body["customer_preferred_export_rule"] = "never"  # type: ignore[assignment]
    try:
        assert api.post(f"{BASE}/{site}/grid_import_export", json=body).status_code == 200
        components = response(api.get(f"{BASE}/{site}/site_info"))["components"]
        assert components["customer_preferred_export_rule"] == "never"
        assert components["disallow_charge_from_grid_with_solar_installed"] is False
    finally:
        api.post(
            f"{BASE}/{site}/grid_import_export", json={"customer_preferred_export_rule": "pv_only"}
        )


def test_time_of_use_settings_are_validated_and_echoed(api: httpx.Client, live: LiveDemo) -> None:
    site = battery_site(live)
    tariff = {
        "seasons": {
            "All": {
                "fromMonth": 1,
                "toMonth": 12,
                "tou_periods": {
                    "ON_PEAK": {"periods": [{"fromHour": 17, "toHour": 20}]},
                    "OFF_PEAK": {"periods": [{"fromHour": 0, "toHour": 0}]},
                },
            }
        },
        "energy_charges": {"All": {"rates": {"ON_PEAK": 0.45, "OFF_PEAK": 0.12}}},
    }
    ok = api.post(
        f"{BASE}/{site}/time_of_use_settings", json={"tou_settings": {"tariff_content_v2": tariff}}
    )
    assert ok.json()["response"]["code"] == 201
    info = response(api.get(f"{BASE}/{site}/site_info"))
    assert info["tariff_content_v2"] == tariff
    peaks = [s for s in info["tou_settings"]["schedule"] if s["target"] == "peak"]
    assert peaks == [
        {
            "target": "peak",
            "week_days": [0, 1, 2, 3, 4, 5, 6],
            "start_seconds": 61200,
            "end_seconds": 72000,
        }
    ]
    tariff["seasons"]["All"]["tou_periods"]["ON_PEAK"]["periods"][0]["toHour"] = 30  # type: ignore[index]
    bad = api.post(
        f"{BASE}/{site}/time_of_use_settings", json={"tou_settings": {"tariff_content_v2": tariff}}
    )
    assert bad.status_code == 400
    assert "toHour" in bad.json()["error_description"]


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("backup", {"backup_reserve_percent": 101}, "backup_reserve_percent"),
        ("backup", {"backup_reserve_percent": "high"}, "backup_reserve_percent"),
        ("backup", {}, "backup_reserve_percent"),
        ("operation", {"default_real_mode": "eco"}, "default_real_mode"),
        ("storm_mode", {"enabled": "yes"}, "enabled"),
        (
            "grid_import_export",
            {"customer_preferred_export_rule": "all"},
            "customer_preferred_export_rule",
        ),
        (
            "off_grid_vehicle_charging_reserve",
            {"off_grid_vehicle_charging_reserve_percent": -1},
            "off_grid_vehicle_charging_reserve_percent",
        ),
        ("time_of_use_settings", {"tou_settings": {"schedule": "peak"}}, "tou_settings.schedule"),
    ],
)
def test_bad_values_get_400_naming_the_field(
    api: httpx.Client, live: LiveDemo, path: str, body: dict[str, object], field: str
) -> None:
    answer = api.post(f"{BASE}/{battery_site(live)}/{path}", json=body)
    assert answer.status_code == 400
    error = answer.json()
    assert error["response"] is None
    assert field in error["error_description"]
    assert field in str(error.get("messages", {}))


def test_battery_settings_on_a_solar_only_site_are_refused(
    api: httpx.Client, live: LiveDemo
) -> None:
    site = solar_site(live)
    answer = api.post(f"{BASE}/{site}/backup", json={"backup_reserve_percent": 30})
    assert answer.status_code == 400
    assert "battery" in answer.json()["error_description"]
    # The site says it is not tou_capable: a schedule is refused, not stored.
    before = response(api.get(f"{BASE}/{site}/site_info"))
    assert before["components"]["tou_capable"] is False
    schedule = {"optimization_strategy": "economics", "schedule": []}
    refused = api.post(f"{BASE}/{site}/time_of_use_settings", json={"tou_settings": schedule})
    assert refused.status_code == 400
    assert refused.json()["error_description"] == (
        "time_of_use_settings needs a battery, and this site has none"
    )
    assert response(api.get(f"{BASE}/{site}/site_info"))["tou_settings"] == before["tou_settings"]


def test_scopes_are_enforced(live: LiveDemo) -> None:
    site = battery_site(live)
    with client(live, live.mint(["energy_device_data"])) as reader:
        assert reader.get(f"{BASE}/{site}/live_status").status_code == 200
        refused = reader.post(f"{BASE}/{site}/backup", json={"backup_reserve_percent": 30})
        assert refused.status_code == 403
        assert "energy_cmds" in refused.json()["error_description"]
    with client(live, live.mint(["vehicle_device_data", "energy_cmds"])) as writer:
        assert writer.get(f"{BASE}/{site}/site_info").status_code == 403
        assert (
            writer.post(f"{BASE}/{site}/backup", json={"backup_reserve_percent": 20}).status_code
            == 200
        )


@pytest.fixture(scope="module")
def neighbour(live: LiveDemo) -> tuple[int, str]:
    """Another account with a home whose gateway never connected: its site id and a token."""
    runtime = live.handle.runtime

    async def make() -> tuple[int, str]:
        async with runtime.sessions() as session, session.begin():
            user = User(
                email="neighbour@flotta.test", full_name="Neighbour", created_at=runtime.clock.now()
            )
            session.add(user)
            await session.flush()
            made = await provision_site(
                session,
                owner=user,
                site_name="Next door",
                time_zone_name="Europe/Berlin",
                spec={"solar_kwp": 3},
                secret_key=runtime.settings.secret_key,
                clock=runtime.clock,
                installed_at=runtime.clock.now() - timedelta(days=1),
            )
            return made.site.id, user.uuid

    site, subject = live.call(make())
    scopes = ["energy_device_data", "energy_cmds"]
    return site, runtime.tokens.mint(subject, scopes)


def test_someone_elses_site_and_unknown_ids_are_404(
    api: httpx.Client, neighbour: tuple[int, str]
) -> None:
    for site in (neighbour[0], 42):
        answer = api.get(f"{BASE}/{site}/site_info")
        assert answer.status_code == 404
        assert answer.json()["error"] == "not_found"
        # The id asked for, whichever way it is out of reach.
        assert answer.json()["error_description"] == f"no energy site {site} on this account"
    assert api.get(f"{BASE}/not-a-number/site_info").status_code == 400
    ids = [p.get("energy_site_id") for p in response(api.get("/api/1/products"))]
    assert neighbour[0] not in ids


def test_an_offline_site_is_listed_but_its_live_reads_are_408(
    live: LiveDemo, neighbour: tuple[int, str]
) -> None:
    site, token = neighbour
    with client(live, token) as theirs:
        listed = response(theirs.get("/api/1/products"))
        assert [p["energy_site_id"] for p in listed] == [site]
        answer = theirs.get(f"{BASE}/{site}/live_status")
        assert answer.status_code == 408
        assert answer.json()["error"].startswith("device unavailable")
        refused = theirs.post(
            f"{BASE}/{site}/grid_import_export", json={"customer_preferred_export_rule": "never"}
        )
        assert refused.status_code == 408
        # History needs no live link: it is stored.
        history = theirs.get(f"{BASE}/{site}/calendar_history", params={"kind": "energy"})
        assert response(history)["time_series"][0]["total_home_usage"] == 0


def test_an_apps_token_reaches_only_the_sites_the_owner_consented_to(
    api: httpx.Client, live: LiveDemo
) -> None:
    runtime = live.handle.runtime
    site = battery_site(live)
    client_id = str(live.info["client_id"])

    async def set_site_consent(present: bool) -> None:
        from flotta.accounts.repository import UserRepository
        from flotta.energy.service import site_ref
        from flotta.oauth.repository import OAuthRepository

        async with runtime.sessions() as session, session.begin():
            owner = await UserRepository(session).by_email("owner@flotta.demo")
            repo = OAuthRepository(session)
            app = await repo.client(client_id)
            assert owner is not None and app is not None
            grant = await repo.active_grant(owner.id, app.id)
            assert grant is not None
            refs = set(grant.devices) - {site_ref(site)}
            grant.devices = sorted(refs | ({site_ref(site)} if present else set()))

    live.call(set_site_consent(False))
    try:
        ids = [p.get("energy_site_id") for p in response(api.get("/api/1/products"))]
        assert site not in ids and solar_site(live) in ids
        assert api.get(f"{BASE}/{site}/live_status").status_code == 404
    finally:
        live.call(set_site_consent(True))
    assert api.get(f"{BASE}/{site}/live_status").status_code == 200
