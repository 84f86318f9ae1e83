"""Charging physics: AC and DC power curves, energy integration and time to full."""

from __future__ import annotations

from dataclasses import dataclass

from flotta.sim.vehicle_models import VehicleModel

AC_EFFICIENCY = 0.92  # wall-to-pack losses on the onboard charger
DC_EFFICIENCY = 0.97
DC_KW_AT_80 = 50.0
DC_KW_AT_100 = 8.0
AC_TAPER_START = 0.95  # AC holds full power almost to the top


@dataclass
class ChargeSession:
    """One plugged-in session: what the EVSE offers and what has been delivered."""

    kind: str  # "ac" | "dc"
    evse_amps: int = 48
    voltage: float = 240.0
    phases: int = 1
    station_kw: float = 250.0
    energy_added_kwh: float = 0.0
    miles_added: float = 0.0


def dc_power_kw(model: VehicleModel, soc: float, station_kw: float) -> float:
    """DC power the pack accepts at `soc`: peak to the taper knee, ~50 kW at 80 %, low above."""
    peak = min(model.dc_peak_kw, station_kw)
    knee = model.dc_taper_start_soc
    if soc < 0.05:
        power = peak * 0.6  # cold-ish pack ramps up over the first few percent
    elif soc <= knee:
        power = peak
    elif soc <= 0.8:
        frac = (soc - knee) / (0.8 - knee)
        power = peak + (DC_KW_AT_80 - peak) * frac
    else:
        frac = min(1.0, (soc - 0.8) / 0.2)
        power = DC_KW_AT_80 + (DC_KW_AT_100 - DC_KW_AT_80) * frac
    return max(0.0, min(power, station_kw))


def ac_amps(model: VehicleModel, requested: int, session: ChargeSession) -> int:
    """Actual AC current: the lowest of request, EVSE pilot and the onboard charger's limit."""
    return max(0, min(requested, session.evse_amps, model.max_ac_amps))


def ac_power_kw(model: VehicleModel, soc: float, amps: int, session: ChargeSession) -> float:
    """AC power at the wall for `amps`, tapering over the last few percent."""
    power = amps * session.voltage * session.phases / 1000.0
    if soc > AC_TAPER_START:
        power *= max(0.3, 1.0 - (soc - AC_TAPER_START) / (1.0 - AC_TAPER_START) * 0.7)
    return power


def charge_power_kw(model: VehicleModel, soc: float, amps: int, session: ChargeSession) -> float:
    """Power delivered from the charger at this instant (kW)."""
    if session.kind == "dc":
        return dc_power_kw(model, soc, session.station_kw)
    return ac_power_kw(model, soc, amps, session)


def pack_power_kw(session: ChargeSession, power_kw: float) -> float:
    """Power that actually reaches the pack after charger losses."""
    return power_kw * (DC_EFFICIENCY if session.kind == "dc" else AC_EFFICIENCY)


def hours_to_limit(
    model: VehicleModel, soc: float, limit: float, amps: int, session: ChargeSession
) -> float:
    """Hours from `soc` to `limit` (fractions) at the current request, integrated per 0.5 %."""
    hours = 0.0
    level = soc
    step = 0.005
    while level < limit - 1e-9:
        delta = min(step, limit - level)
        power = pack_power_kw(session, charge_power_kw(model, level, amps, session))
        if power <= 0.01:
            return 0.0
        hours += delta * model.battery_kwh / power
        level += delta
    return hours
