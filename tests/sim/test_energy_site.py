"""Site physics as an owner would notice it: where the sun's power goes, and the battery."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from flotta.sim.energy_meter import backfill
from flotta.sim.energy_site import Offer, SiteSettings, SiteSpec, SiteState, step
from flotta.sim.energy_sun import cloud_cover, house_load_w, solar_power_w

BATTERY = SiteSpec(
    44.5,
    11.3,
    "Europe/Rome",
    solar_kwp=6,
    battery_wh=13_500,
    max_charge_w=5000,
    max_discharge_w=5000,
)
SOLAR_ONLY = SiteSpec(37.5, -121.9, "America/Los_Angeles", solar_kwp=8)
MINUTE = 60.0


def half_full() -> SiteState:
    return SiteState(energy_wh=6750)


def test_solar_follows_the_sun_and_the_seasons() -> None:
    noon_june = datetime(2026, 6, 21, 10, 40, tzinfo=UTC)  # solar noon in Bologna
    noon_december = datetime(2026, 12, 21, 11, 15, tzinfo=UTC)
    midnight = datetime(2026, 6, 21, 23, 0, tzinfo=UTC)
    june = solar_power_w(6, 44.5, 11.3, 1, noon_june) / (1 - cloud_cover(1, noon_june))
    december = solar_power_w(6, 44.5, 11.3, 1, noon_december) / (1 - cloud_cover(1, noon_december))
    assert solar_power_w(6, 44.5, 11.3, 1, midnight) == 0
    assert 4000 < june < 6000
    assert december < june * 0.8
    # Further north, the December sun is weaker still.
    assert (
        solar_power_w(6, 60.0, 11.3, 1, noon_december) / (1 - cloud_cover(1, noon_december))
        < december
    )


def test_house_load_peaks_in_the_evening() -> None:
    evening = datetime(2026, 6, 21, 17, 0, tzinfo=UTC)  # 19:00 in Rome
    night = datetime(2026, 6, 21, 1, 0, tzinfo=UTC)
    assert house_load_w(600, "Europe/Rome", 1, evening) > 2 * house_load_w(
        600, "Europe/Rome", 1, night
    )


def test_self_consumption_charges_from_surplus_then_exports() -> None:
    flows = step(BATTERY, SiteSettings(), half_full(), Offer(6000, 800), MINUTE)
    assert flows.solar_to_home == 800
    assert flows.solar_to_battery == 5000  # the battery's limit
    assert flows.solar_to_grid == 200
    assert flows.grid_import == 0


def test_self_consumption_covers_the_night_but_keeps_the_reserve() -> None:
    state = SiteState(energy_wh=13_500 * 0.2 + 10)  # 10 Wh above a 20 % reserve
    flows = step(BATTERY, SiteSettings(backup_reserve_percent=20), state, Offer(0, 1200), MINUTE)
    assert flows.battery_to_home == 600  # 10 Wh in one minute
    assert flows.grid_to_home == 600
    assert abs(state.energy_wh - 13_500 * 0.2) < 1e-6
    again = step(BATTERY, SiteSettings(backup_reserve_percent=20), state, Offer(0, 1200), MINUTE)
    assert again.battery_to_home == 0 and again.grid_to_home == 1200


def test_time_based_control_follows_the_tariff() -> None:
    chosen = SiteSettings(mode="autonomous", export_rule="battery_ok")
    peak = step(BATTERY, chosen, half_full(), Offer(0, 1000, period="ON_PEAK"), MINUTE)
    assert peak.battery_to_home == 1000 and peak.battery_to_grid == 4000  # sells at peak
    off_peak = step(BATTERY, chosen, half_full(), Offer(0, 1000, period="OFF_PEAK"), MINUTE)
    assert off_peak.battery_discharge == 0
    assert off_peak.grid_to_battery == 5000  # fills up cheaply
    chosen.disallow_grid_charging = True
    no_grid = step(BATTERY, chosen, half_full(), Offer(0, 1000, period="OFF_PEAK"), MINUTE)
    assert no_grid.grid_to_battery == 0


def test_backup_only_and_storm_watch_keep_the_battery_full() -> None:
    backup = step(BATTERY, SiteSettings(mode="backup"), half_full(), Offer(0, 1000), MINUTE)
    assert backup.battery_discharge == 0 and backup.grid_to_battery == 5000
    storm = SiteState(energy_wh=6750, storm_active=True)
    watched = step(BATTERY, SiteSettings(storm_mode_enabled=True), storm, Offer(0, 1000), MINUTE)
    assert watched.battery_discharge == 0 and watched.grid_to_battery == 5000


def test_export_rules() -> None:
    full = SiteState(energy_wh=13_500)
    never = step(BATTERY, SiteSettings(export_rule="never"), full, Offer(6000, 500), MINUTE)
    assert never.grid_export == 0 and never.solar == 500  # the rest is curtailed
    pv_only = step(BATTERY, SiteSettings(export_rule="pv_only"), full, Offer(6000, 500), MINUTE)
    assert pv_only.solar_to_grid == 5500


def test_an_outage_islands_the_home_on_the_battery() -> None:
    state = SiteState(energy_wh=6750, grid_up=False)
    flows = step(BATTERY, SiteSettings(), state, Offer(0, 1500, wall_w=7000), MINUTE)
    assert flows.grid_import == flows.grid_export == 0
    assert flows.battery_to_home == 5000  # house first, then as much car as the limit allows
    assert flows.wall_connector == 3500
    low = SiteState(energy_wh=1000, grid_up=False)
    reserve = SiteSettings(off_grid_vehicle_charging_reserve_percent=50)
    saved = step(BATTERY, reserve, low, Offer(0, 1500, wall_w=7000), MINUTE)
    assert saved.wall_connector == 0 and saved.battery_to_home == 1500


def test_solar_surplus_goes_to_the_car_before_the_grid() -> None:
    flows = step(SOLAR_ONLY, SiteSettings(), SiteState(), Offer(6000, 1000, wall_w=7000), MINUTE)
    assert flows.solar_to_home == 6000  # all of it, the car included
    assert flows.solar_to_grid == 0
    assert flows.grid_to_home == 2000
    sunny = step(SOLAR_ONLY, SiteSettings(), SiteState(), Offer(9000, 1000, wall_w=7000), MINUTE)
    assert sunny.solar_to_grid == 1000 and sunny.grid_import == 0


def test_backfill_is_fast_and_keeps_the_battery_in_bounds() -> None:
    end = datetime(2026, 11, 22, tzinfo=UTC)
    state = half_full()
    outage = ((end - timedelta(days=1), end - timedelta(days=1) + timedelta(hours=1)),)
    days = backfill(BATTERY, SiteSettings(), state, end - timedelta(days=3), end, None, outage)
    assert len(days) == 3 * 24 * 12
    assert 0 <= state.energy_wh <= BATTERY.battery_wh and state.grid_up
    during = [i for i in days if outage[0][0] <= i.start < outage[0][1]]
    assert during and all(i.wh["grid_to_home"] == 0 for i in during)
