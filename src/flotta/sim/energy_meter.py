"""The site's meter: integrates flows into whole-Wh totals per UTC-aligned 5-minute interval.

Intervals of five minutes start on every local midnight of every real time zone (offsets are
whole multiples of 5 minutes), so calendar sums can cut them at any day, month or year.
Rounding carries over from one interval to the next, so no energy is lost to it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from flotta.sim.energy_site import FLOW_NAMES, Flows, Offer, SiteSettings, SiteSpec, SiteState, step
from flotta.sim.energy_sun import house_load_w, solar_power_w, zone

INTERVAL_S = 300


@dataclass(frozen=True, slots=True)
class IntervalTotals:
    """Energy (Wh) of each flow over one interval starting at `start` (UTC)."""

    start: datetime
    seconds: int
    wh: dict[str, int]


@dataclass(frozen=True, slots=True)
class BackupEvent:
    """The site ran islanded from `start` for `duration_s` seconds."""

    start: datetime
    duration_s: int


def interval_start(when: datetime) -> datetime:
    epoch = int(when.timestamp())
    return datetime.fromtimestamp(epoch - epoch % INTERVAL_S, UTC)


@dataclass
class Meter:
    """Accumulates flows tick by tick and hands back each interval once it has ended."""

    current: datetime | None = None
    _sums: dict[str, float] = field(default_factory=lambda: dict.fromkeys(FLOW_NAMES, 0.0))
    _total: dict[str, float] = field(default_factory=lambda: dict.fromkeys(FLOW_NAMES, 0.0))
    _emitted: dict[str, int] = field(default_factory=lambda: dict.fromkeys(FLOW_NAMES, 0))

    def add(self, at: datetime, flows: Flows, dt_s: float) -> list[IntervalTotals]:
        """Book `dt_s` seconds of `flows` ending at `at`; return intervals that closed."""
        closed: list[IntervalTotals] = []
        bucket = interval_start(at - timedelta(microseconds=1)) if dt_s > 0 else interval_start(at)
        if self.current is not None and bucket != self.current:
            closed.append(self.flush())
        self.current = bucket
        for name, wh in flows.scaled(dt_s / 3600.0).items():
            self._sums[name] += wh
        return closed

    def flush(self) -> IntervalTotals:
        """Close the current interval now (at the end of a back-fill)."""
        assert self.current is not None
        out: dict[str, int] = {}
        for name in FLOW_NAMES:
            self._total[name] += self._sums[name]
            whole = round(self._total[name])
            out[name] = whole - self._emitted[name]
            self._emitted[name] = whole
            self._sums[name] = 0.0
        return IntervalTotals(self.current, INTERVAL_S, out)


WallDraw = Callable[[datetime], float]


def offer_at(spec: SiteSpec, settings: SiteSettings, when: datetime, wall_w: float) -> Offer:
    """What sun, household and tariff offer at `when`."""
    local = when.astimezone(zone(spec.time_zone))
    return Offer(
        solar_w=solar_power_w(spec.solar_kwp, spec.latitude, spec.longitude, spec.seed, when),
        house_w=house_load_w(spec.base_load_w, spec.time_zone, spec.seed, when),
        wall_w=wall_w,
        period=settings.tariff.period_at(local),
    )


def backfill(
    spec: SiteSpec,
    settings: SiteSettings,
    state: SiteState,
    start: datetime,
    end: datetime,
    wall: WallDraw | None = None,
    outages: tuple[tuple[datetime, datetime], ...] = (),
) -> list[IntervalTotals]:
    """History from `start` to `end` in whole intervals, one physics step per interval."""
    meter = Meter()
    out: list[IntervalTotals] = []
    at = interval_start(start)
    step_s = float(INTERVAL_S)
    while at + timedelta(seconds=INTERVAL_S) <= end:
        middle = at + timedelta(seconds=INTERVAL_S / 2)
        state.grid_up = not any(first <= middle < last for first, last in outages)
        offer = offer_at(spec, settings, middle, wall(middle) if wall else 0.0)
        flows = step(spec, settings, state, offer, step_s)
        at += timedelta(seconds=INTERVAL_S)
        out += meter.add(at, flows, step_s)
    if meter.current is not None:
        out.append(meter.flush())
    state.grid_up = True
    return out


def interval_json(totals: IntervalTotals) -> dict[str, Any]:
    """An interval as the site sends it in a TELEMETRY frame."""
    return {"start": totals.start.isoformat(), "seconds": totals.seconds, "wh": totals.wh}


def event_json(event: BackupEvent) -> dict[str, Any]:
    return {"start": event.start.isoformat(), "duration_s": event.duration_s}
