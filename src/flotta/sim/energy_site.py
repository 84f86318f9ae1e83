"""One home's power flows per interval: solar, house and car load, battery and grid.

`step()` is pure apart from the battery's stored energy: given what the sun and the household
offer over `dt_s` seconds, it decides every source-to-sink flow. Flows are average watts, so
solar + grid import + battery discharge = load + grid export + battery charge holds by
construction.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

from flotta.sim.energy_modes import Intent, intent_for
from flotta.sim.energy_tariff import Tariff, default_tariff

MODES = ("self_consumption", "autonomous", "backup")
EXPORT_RULES = ("battery_ok", "pv_only", "never")


@dataclass(frozen=True, slots=True)
class SiteSpec:
    """What was installed: where, how much solar, how big a battery."""

    latitude: float
    longitude: float
    time_zone: str
    solar_kwp: float = 0.0
    battery_wh: float = 0.0
    max_charge_w: float = 0.0
    max_discharge_w: float = 0.0
    base_load_w: float = 600.0
    seed: int = 7

    @property
    def has_battery(self) -> bool:
        return self.battery_wh > 0


@dataclass(slots=True)
class SiteSettings:
    """What the owner chose; every member is one the Fleet API can change."""

    backup_reserve_percent: int = 20
    mode: str = "self_consumption"
    storm_mode_enabled: bool = False
    export_rule: str = "pv_only"
    disallow_grid_charging: bool = False
    off_grid_vehicle_charging_reserve_percent: int = 0
    tariff: Tariff = field(default_factory=default_tariff)


@dataclass(slots=True)
class SiteState:
    """What changes as time passes: stored energy, the grid and storm watch."""

    energy_wh: float = 0.0
    grid_up: bool = True
    storm_active: bool = False  # a storm is forecast and storm watch is on


@dataclass(frozen=True, slots=True)
class Flows:
    """Average power (W) from each source to each sink over one interval."""

    solar_to_home: float = 0.0
    solar_to_battery: float = 0.0
    solar_to_grid: float = 0.0
    grid_to_home: float = 0.0
    grid_to_battery: float = 0.0
    battery_to_home: float = 0.0
    battery_to_grid: float = 0.0
    wall_connector: float = 0.0  # the part of home load a car draws

    @property
    def solar(self) -> float:
        return self.solar_to_home + self.solar_to_battery + self.solar_to_grid

    @property
    def load(self) -> float:
        return self.solar_to_home + self.grid_to_home + self.battery_to_home

    @property
    def grid_import(self) -> float:
        return self.grid_to_home + self.grid_to_battery

    @property
    def grid_export(self) -> float:
        return self.solar_to_grid + self.battery_to_grid

    @property
    def battery_charge(self) -> float:
        return self.solar_to_battery + self.grid_to_battery

    @property
    def battery_discharge(self) -> float:
        return self.battery_to_home + self.battery_to_grid

    def scaled(self, factor: float) -> dict[str, float]:
        """Each flow times `factor` (watts times hours gives Wh)."""
        return {f.name: getattr(self, f.name) * factor for f in fields(self)}


FLOW_NAMES = tuple(f.name for f in fields(Flows))


@dataclass(frozen=True, slots=True)
class Offer:
    """What the world offers over an interval: sunshine, the home's and the car's demand."""

    solar_w: float
    house_w: float
    wall_w: float = 0.0
    period: str = "OFF_PEAK"  # the tariff period, for time-based control


def _caps(spec: SiteSpec, state: SiteState, floor_wh: float, dt_s: float) -> tuple[float, float]:
    """Most the battery can take and give on average over `dt_s` (W)."""
    if not spec.has_battery or dt_s <= 0:
        return 0.0, 0.0
    hours = dt_s / 3600.0
    room = max(0.0, spec.battery_wh - state.energy_wh) / hours
    above_floor = max(0.0, state.energy_wh - floor_wh) / hours
    return min(spec.max_charge_w, room), min(spec.max_discharge_w, above_floor)


def step(
    spec: SiteSpec, settings: SiteSettings, state: SiteState, offer: Offer, dt_s: float
) -> Flows:
    """Decide the interval's flows and move the battery's energy accordingly."""
    flows = (
        _on_grid(spec, settings, state, offer, dt_s)
        if state.grid_up
        else _islanded(spec, settings, state, offer, dt_s)
    )
    if dt_s > 0:
        delta = (flows.battery_charge - flows.battery_discharge) * dt_s / 3600.0
        state.energy_wh = min(spec.battery_wh, max(0.0, state.energy_wh + delta))
    return flows


def _on_grid(
    spec: SiteSpec, settings: SiteSettings, state: SiteState, offer: Offer, dt_s: float
) -> Flows:
    load = offer.house_w + offer.wall_w
    floor = spec.battery_wh * settings.backup_reserve_percent / 100.0
    charge_cap, discharge_cap = _caps(spec, state, floor, dt_s)
    intent = intent_for(settings, state, offer.period)
    s2h = min(offer.solar_w, load)
    spare_solar = offer.solar_w - s2h
    deficit = load - s2h
    s2b = min(spare_solar, charge_cap) if intent.charge_from_solar else 0.0
    g2b = 0.0
    if intent.charge_from_grid and not settings.disallow_grid_charging:
        g2b = max(0.0, charge_cap - s2b)
    b2h = b2g = 0.0
    if s2b + g2b <= 0.0:  # a battery either charges or discharges, never both
        b2h = min(deficit, discharge_cap) if intent.discharge_to_home else 0.0
        if intent.export_battery and settings.export_rule == "battery_ok":
            b2g = max(0.0, discharge_cap - b2h)
    s2g = spare_solar - s2b if settings.export_rule != "never" else 0.0  # else curtailed
    return Flows(
        solar_to_home=s2h,
        solar_to_battery=s2b,
        solar_to_grid=s2g,
        grid_to_home=deficit - b2h,
        grid_to_battery=g2b,
        battery_to_home=b2h,
        battery_to_grid=b2g,
        wall_connector=offer.wall_w,
    )


def _islanded(
    spec: SiteSpec, settings: SiteSettings, state: SiteState, offer: Offer, dt_s: float
) -> Flows:
    """Grid down: the battery carries the home; what cannot be served is shed, car first."""
    charge_cap, discharge_cap = _caps(spec, state, 0.0, dt_s)
    soc = state.energy_wh / spec.battery_wh * 100.0 if spec.has_battery else 0.0
    car_allowed = soc > settings.off_grid_vehicle_charging_reserve_percent
    supply = offer.solar_w + discharge_cap
    house = min(offer.house_w, supply)
    car = min(offer.wall_w if car_allowed else 0.0, supply - house)
    load = house + car
    s2h = min(offer.solar_w, load)
    return Flows(
        solar_to_home=s2h,
        solar_to_battery=min(offer.solar_w - s2h, charge_cap),
        battery_to_home=load - s2h,
        wall_connector=car,
    )


__all__ = [
    "EXPORT_RULES",
    "FLOW_NAMES",
    "MODES",
    "Flows",
    "Intent",
    "Offer",
    "SiteSettings",
    "SiteSpec",
    "SiteState",
    "step",
]
