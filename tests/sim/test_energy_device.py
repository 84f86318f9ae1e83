"""The simulated site gateway without a network: metering over time, outages, requests."""

from __future__ import annotations

from datetime import UTC, datetime

from flotta.clock import ManualClock
from flotta.sim.energy_device import SimSite
from flotta.sim.energy_site import SiteSpec, SiteState
from flotta.sim.energy_wall import CHARGING, DISCONNECTED, WallConnector

T0 = datetime(2026, 6, 21, 9, 58, tzinfo=UTC)  # late morning in Rome, two minutes to an edge
SPEC = SiteSpec(
    44.5,
    11.3,
    "Europe/Rome",
    solar_kwp=6,
    battery_wh=13_500,
    max_charge_w=5000,
    max_discharge_w=5000,
)


def site(clock: ManualClock) -> SimSite:
    return SimSite(1, "fes_1_x", SPEC, clock, "ws://unused", state=SiteState(energy_wh=6000))


def test_intervals_close_on_utc_five_minute_edges() -> None:
    clock = ManualClock(T0)
    sim = site(clock)
    sim.advance(clock.now())
    for _ in range(13):
        clock.advance(61)  # ticks that straddle interval edges
        sim.advance(clock.now())
    starts = [i.start for i in sim.unsent]
    assert starts == [
        datetime(2026, 6, 21, 9, 55, tzinfo=UTC),
        datetime(2026, 6, 21, 10, 0, tzinfo=UTC),
        datetime(2026, 6, 21, 10, 5, tzinfo=UTC),
    ]
    assert all(i.seconds == 300 for i in sim.unsent)
    morning = sim.unsent[1].wh
    assert morning["solar_to_home"] + morning["solar_to_battery"] + morning["solar_to_grid"] > 0


def test_an_outage_becomes_one_backup_event() -> None:
    clock = ManualClock(T0)
    sim = site(clock)
    sim.advance(clock.now())
    sim.grid_outage()
    clock.advance(600)
    live = sim.handle({"op": "live_status"})["live_status"]
    assert live["island_status"] == "off_grid" and live["grid_power"] == 0
    sim.restore_grid()
    assert [(e.start, e.duration_s) for e in sim.unsent_events] == [(T0, 600)]
    assert sim.handle({"op": "live_status"})["live_status"]["grid_status"] == "Active"


def test_configure_is_all_or_nothing() -> None:
    sim = site(ManualClock(T0))
    bad = sim.handle(
        {"op": "configure", "settings": {"backup_reserve_percent": 50, "default_real_mode": "x"}}
    )
    assert bad["error"] == "invalid_field"
    assert sim.settings.backup_reserve_percent == 20
    good = sim.handle({"op": "configure", "settings": {"backup_reserve_percent": 50}})
    assert good["settings"]["backup_reserve_percent"] == 50
    assert sim.handle({"op": "dance"})["error"] == "invalid_command"


def test_the_wall_connector_reports_the_car_on_its_cable() -> None:
    from random import Random

    from flotta.sim.vehicle_state import SimVehicle

    car = SimVehicle("5YJ3E1EBXTF100000", "model3_lr", Random(1), T0)
    wall = WallConnector("din-1", "wc-1")
    assert wall.state() == DISCONNECTED and wall.power_w() == 0
    wall.plug(car)
    car.soc = 0.3
    car.plug_in("ac")
    car.advance(T0.replace(minute=59))
    assert wall.state() == CHARGING
    assert wall.power_w() == car.charge_power_kw * 1000 > 0
    assert wall.live(wall.power_w())["vin"] == car.vin
