"""Hypothesis: every interval balances, the meter loses no energy, calendars add up anywhere."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from flotta.energy.history import buckets, sum_into
from flotta.sim.energy_meter import INTERVAL_S, Meter
from flotta.sim.energy_site import (
    EXPORT_RULES,
    FLOW_NAMES,
    MODES,
    Flows,
    Offer,
    SiteSettings,
    SiteSpec,
    SiteState,
    step,
)

power = st.floats(min_value=0.0, max_value=20_000.0, allow_nan=False)
PERIODS = ("ON_PEAK", "PARTIAL_PEAK", "OFF_PEAK", "SUPER_OFF_PEAK")
ZONES = (
    "UTC",
    "Europe/Rome",
    "America/Los_Angeles",
    "Asia/Kolkata",
    "Asia/Kathmandu",
    "Australia/Lord_Howe",
    "America/St_Johns",
    "Pacific/Chatham",
)


@st.composite
def sites(draw: st.DrawFn) -> tuple[SiteSpec, SiteSettings, SiteState]:
    battery = draw(st.sampled_from([0.0, 5_000.0, 13_500.0, 40_000.0]))
    spec = SiteSpec(
        latitude=0.0,
        longitude=0.0,
        time_zone="UTC",
        solar_kwp=draw(st.floats(0, 15)),
        battery_wh=battery,
        max_charge_w=draw(st.floats(0, 12_000)) if battery else 0.0,
        max_discharge_w=draw(st.floats(0, 12_000)) if battery else 0.0,
    )
    chosen = SiteSettings(
        backup_reserve_percent=draw(st.integers(0, 100)),
        mode=draw(st.sampled_from(MODES)),
        storm_mode_enabled=draw(st.booleans()),
        export_rule=draw(st.sampled_from(EXPORT_RULES)),
        disallow_grid_charging=draw(st.booleans()),
        off_grid_vehicle_charging_reserve_percent=draw(st.integers(0, 100)),
    )
    state = SiteState(
        energy_wh=draw(st.floats(0, 1)) * battery,
        grid_up=draw(st.booleans()),
        storm_active=draw(st.booleans()),
    )
    return spec, chosen, state


@settings(max_examples=500, deadline=None)
@given(
    site=sites(),
    solar=power,
    house=power,
    wall=power,
    period=st.sampled_from(PERIODS),
    dt=st.floats(min_value=0.001, max_value=3600.0),
)
def test_every_interval_balances(
    site: tuple[SiteSpec, SiteSettings, SiteState],
    solar: float,
    house: float,
    wall: float,
    period: str,
    dt: float,
) -> None:
    spec, chosen, state = site
    before = state.energy_wh
    flows = step(spec, chosen, state, Offer(solar, house, wall, period), dt)

    assert all(getattr(flows, name) >= -1e-9 for name in FLOW_NAMES)
    supply = flows.solar + flows.grid_import + flows.battery_discharge
    demand = flows.load + flows.grid_export + flows.battery_charge
    assert abs(supply - demand) <= 1e-6 * max(1.0, supply)
    assert flows.solar <= solar + 1e-6
    assert flows.load <= house + wall + 1e-6
    assert -1e-6 <= state.energy_wh <= spec.battery_wh + 1e-6
    assert flows.battery_charge * flows.battery_discharge == 0  # never both at once
    if chosen.export_rule == "never":
        assert flows.grid_export == 0
    if chosen.export_rule != "battery_ok":
        assert flows.battery_to_grid == 0
    if chosen.disallow_grid_charging or not state.grid_up:
        assert flows.grid_to_battery == 0
    if not state.grid_up:
        assert flows.grid_import == flows.grid_export == 0
    else:
        # On grid the home is always served in full.
        assert abs(flows.load - (house + wall)) <= 1e-6 * max(1.0, house + wall)
        floor = spec.battery_wh * chosen.backup_reserve_percent / 100.0
        if flows.battery_discharge > 0:
            assert state.energy_wh >= min(before, floor) - 1e-6


@settings(max_examples=200, deadline=None)
@given(
    ticks=st.lists(st.tuples(st.floats(0.1, 400.0), power, power, power), min_size=1, max_size=80)
)
def test_the_meter_loses_no_energy_to_rounding(
    ticks: list[tuple[float, float, float, float]],
) -> None:
    meter = Meter()
    at = datetime(2026, 6, 1, tzinfo=UTC)
    exact = dict.fromkeys(FLOW_NAMES, 0.0)
    stored = dict.fromkeys(FLOW_NAMES, 0)
    for dt, a, b, c in ticks:
        flows = Flows(solar_to_home=a, grid_to_home=b, battery_to_grid=c, wall_connector=a)
        at += timedelta(seconds=dt)
        for name, wh in flows.scaled(dt / 3600.0).items():
            exact[name] += wh
        for interval in meter.add(at, flows, dt):
            assert interval.seconds == INTERVAL_S
            for name, wh in interval.wh.items():
                stored[name] += wh
    for name, wh in meter.flush().wh.items():
        stored[name] += wh
    assert stored == {name: round(value) for name, value in exact.items()}


@st.composite
def histories(draw: st.DrawFn) -> list[tuple[datetime, dict[str, int]]]:
    start = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=5 * draw(st.integers(0, 100_000)))
    count = draw(st.integers(1, 300))
    # Spread intervals sparsely over up to ~70 days, in 5-minute steps.
    offsets = sorted(draw(st.sets(st.integers(0, 20_000), min_size=count, max_size=count)))
    return [
        (
            start + timedelta(minutes=5 * o),
            {n: draw(st.integers(0, 5000)) if n == "solar_to_home" else 1 for n in FLOW_NAMES},
        )
        for o in offsets
    ]


@settings(max_examples=150, deadline=None)
@given(
    intervals=histories(),
    zone=st.sampled_from(ZONES),
    period=st.sampled_from(["day", "week", "month", "year"]),
)
def test_calendar_sums_match_the_intervals_in_any_zone(
    intervals: list[tuple[datetime, dict[str, int]]], zone: str, period: str
) -> None:
    tz = ZoneInfo(zone)
    first, last = intervals[0][0], intervals[-1][0]
    installed = first - timedelta(days=1)
    edges = buckets(period, last, first, installed, tz)
    window = [(at, wh) for at, wh in intervals if edges[0][0] <= at < edges[-1][1]]
    assert len(window) == len(intervals)  # the window covers start to end in full
    totals = sum_into(edges, intervals)
    for name in ("solar_to_home", "grid_to_home"):
        assert sum(b.wh[name] for b in totals) == sum(wh[name] for _, wh in intervals)
    # Buckets tile the window: each ends where the next starts.
    for (_, end), (start, _) in itertools.pairwise(edges):
        assert end == start


@settings(max_examples=100, deadline=None)
@given(intervals=histories(), zone=st.sampled_from(ZONES))
def test_days_add_up_to_their_month_across_boundaries(
    intervals: list[tuple[datetime, dict[str, int]]], zone: str
) -> None:
    tz = ZoneInfo(zone)
    end = intervals[-1][0]
    month = sum_into(buckets("month", end, None, end, tz), intervals)
    days = [sum_into(buckets("day", b.start, None, end, tz), intervals)[0] for b in month]
    assert [d.wh for d in days] == [m.wh for m in month]
    assert [d.start for d in days] == [m.start for m in month]
