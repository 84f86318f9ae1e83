"""Calendar and telemetry history over HTTP: sums, time zones, backup events and errors."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from tests.energy.support import battery_site, client, on_site, response, solar_site, until
from tests.live import LiveDemo

BASE = "/api/1/energy_sites"
ROME = ZoneInfo("Europe/Rome")


@pytest.fixture
def api(live: LiveDemo) -> Iterator[httpx.Client]:
    with client(live) as c:
        yield c


def history(api: httpx.Client, site: int, **params: str) -> Any:
    return response(api.get(f"{BASE}/{site}/calendar_history", params=params))


def yesterday_noon(tz: ZoneInfo) -> datetime:
    return (datetime.now(tz) - timedelta(days=1)).replace(
        hour=12, minute=0, second=0, microsecond=0
    )


def is_local_midnight(timestamp: str, tz: ZoneInfo) -> bool:
    """Tesla's bucket timestamps: local midnight with the zone's offset of that day."""
    parsed = datetime.fromisoformat(timestamp)
    local = parsed.astimezone(tz)
    return (local.hour, local.minute) == (0, 0) and parsed.utcoffset() == local.utcoffset()


def test_a_week_is_the_sum_of_its_days(api: httpx.Client, live: LiveDemo) -> None:
    site = battery_site(live)
    end = yesterday_noon(ROME).isoformat()
    week = history(api, site, kind="energy", period="week", end_date=end)["time_series"]
    assert len(week) == 7
    for entry in week:
        day = history(api, site, kind="energy", period="day", end_date=entry["timestamp"])
        assert day["time_series"] == [entry]
    yesterday = week[-1]
    assert is_local_midnight(yesterday["timestamp"], ROME)
    assert yesterday["total_home_usage"] > 0
    assert yesterday["total_home_usage"] == (
        yesterday["consumer_energy_imported_from_grid"]
        + yesterday["consumer_energy_imported_from_solar"]
        + yesterday["consumer_energy_imported_from_battery"]
    )
    # Energy balances over the day: what came in went somewhere.
    supply = (
        yesterday["solar_energy_exported"]
        + yesterday["grid_energy_imported"]
        + yesterday["battery_energy_exported"]
    )
    demand = (
        yesterday["total_home_usage"]
        + yesterday["total_grid_energy_exported"]
        + yesterday["total_battery_charge"]
    )
    assert supply == demand


def test_the_time_zone_moves_the_day_not_the_energy(api: httpx.Client, live: LiveDemo) -> None:
    site = solar_site(live)
    end = yesterday_noon(ZoneInfo("America/Los_Angeles")).isoformat()
    local = history(api, site, kind="energy", period="week", end_date=end)
    tokyo = history(api, site, kind="energy", period="month", end_date=end, time_zone="Asia/Tokyo")
    assert local["installation_time_zone"] == "America/Los_Angeles"
    pacific = ZoneInfo("America/Los_Angeles")
    assert all(is_local_midnight(e["timestamp"], pacific) for e in local["time_series"])
    assert all(e["timestamp"].endswith("+09:00") for e in tokyo["time_series"])
    total = sum(e["total_solar_generation"] for e in local["time_series"])
    assert total > 0
    year = history(api, site, kind="energy", period="year", end_date=end)
    assert [e["timestamp"][5:7] for e in year["time_series"]][-1] == end[5:7]
    # Every back-filled interval lies inside both windows, so the totals agree.
    assert sum(e["total_solar_generation"] for e in year["time_series"]) >= total


def test_backup_history_has_the_seeded_outage(api: httpx.Client, live: LiveDemo) -> None:
    events = history(api, battery_site(live), kind="backup", period="week")
    assert events["total_events"] >= 1
    assert events["events"][0]["duration"] == 45 * 60
    assert events["events"][0]["timestamp"].endswith(("+01:00", "+02:00"))


def test_an_outage_islands_the_site_and_is_recorded(api: httpx.Client, live: LiveDemo) -> None:
    site = battery_site(live)
    before = history(api, site, kind="backup", period="week")["total_events"]
    on_site(live, site, lambda s: s.grid_outage())
    try:
        status = response(api.get(f"{BASE}/{site}/live_status"))
        assert status["island_status"] == "off_grid"
        assert status["grid_status"] == "Inactive"
        assert status["grid_power"] == 0
        # Islanded, the home runs on solar and the battery alone (which charges from a solar
        # surplus in daylight, so its sign depends on the hour).
        supplied = status["solar_power"] + status["battery_power"]
        assert supplied == pytest.approx(status["load_power"], abs=1.0)
    finally:
        on_site(live, site, lambda s: s.restore_grid())
    assert response(api.get(f"{BASE}/{site}/live_status"))["island_status"] == "on_grid"

    def recorded() -> int | None:
        count = history(api, site, kind="backup", period="week")["total_events"]
        return count if count > before else None

    assert until(recorded, what="the outage in backup history") == before + 1


def test_wall_connector_sessions(api: httpx.Client, live: LiveDemo) -> None:
    site = solar_site(live)
    answer = api.get(f"{BASE}/{site}/telemetry_history", params={"kind": "charge"})
    sessions = response(answer)["charge_history"]
    assert len(sessions) >= 3
    first = sessions[0]
    assert first["charge_duration"]["seconds"] == 3 * 3600
    assert first["energy_added_wh"] == 23_040  # 3 h at 7.68 kW
    start = datetime.fromtimestamp(
        first["charge_start_time"]["seconds"], ZoneInfo("America/Los_Angeles")
    )
    assert start.hour == 12


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"kind": "power"}, "kind"),
        ({"kind": "energy", "period": "decade"}, "period"),
        ({"kind": "energy", "time_zone": "Mars/Olympus"}, "time_zone"),
        ({"kind": "energy", "end_date": "yesterday"}, "end_date"),
        ({"kind": "energy", "period": "week", "start_date": "2030-01-01T00:00:00Z"}, "start_date"),
        ({"period": "day"}, "kind"),
        ({"kind": "energy", "end_date": "9999-12-31T23:59:59+00:00"}, "end_date"),
    ],
)
def test_bad_history_parameters_name_the_field(
    api: httpx.Client, live: LiveDemo, params: dict[str, str], field: str
) -> None:
    answer = api.get(f"{BASE}/{battery_site(live)}/calendar_history", params=params)
    assert answer.status_code == 400
    assert field in answer.json()["error_description"]


def test_telemetry_history_needs_kind_charge(api: httpx.Client, live: LiveDemo) -> None:
    answer = api.get(f"{BASE}/{solar_site(live)}/telemetry_history", params={"kind": "energy"})
    assert answer.status_code == 400
    assert "kind" in answer.json()["error_description"]
