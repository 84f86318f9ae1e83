"""Operation modes: what the battery wants to do in this interval, before any limits."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from flotta.sim.energy_tariff import PEAKS

if TYPE_CHECKING:
    from flotta.sim.energy_site import SiteSettings, SiteState


@dataclass(frozen=True, slots=True)
class Intent:
    charge_from_solar: bool = True
    charge_from_grid: bool = False
    discharge_to_home: bool = False
    export_battery: bool = False


SELF_CONSUMPTION = Intent(discharge_to_home=True)
HOLD_FULL = Intent(charge_from_grid=True)  # backup only, or a storm coming: fill up, keep it
PEAK_SHAVING = Intent(discharge_to_home=True, export_battery=True)
OFF_PEAK_FILL = Intent(charge_from_grid=True)


def intent_for(settings: SiteSettings, state: SiteState, period: str) -> Intent:
    """Self-consumption covers the home from the battery; time-based control follows the
    tariff (discharge in peaks, fill up off-peak); backup and storm watch keep it full."""
    if settings.mode == "backup" or state.storm_active:
        return HOLD_FULL
    if settings.mode == "autonomous":
        if period == "ON_PEAK":
            return PEAK_SHAVING
        if period in PEAKS:
            return SELF_CONSUMPTION
        return OFF_PEAK_FILL
    return SELF_CONSUMPTION
