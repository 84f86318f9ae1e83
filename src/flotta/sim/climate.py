"""Climate physics: outside temperature over the day and cabin temperature response."""

from __future__ import annotations

import math
from datetime import datetime

HVAC_TAU_S = 420.0  # HVAC brings a hot cabin within ~1 °C of the setpoint in ~20 min
PASSIVE_TAU_S = 3600.0  # a closed cabin drifts to ambient over hours
HVAC_BASE_KW = 1.5
HVAC_KW_PER_DEGREE = 0.25
HVAC_MAX_KW = 6.0
SOLAR_GAIN_C = 8.0  # a parked car in the midday sun runs hotter than the air
MIN_TEMP_C = 15.0
MAX_TEMP_C = 28.0


def outside_temp_c(now: datetime, mean_c: float, swing_c: float) -> float:
    """Air temperature following a day curve: coldest around 03:00, warmest around 15:00."""
    hour = now.hour + now.minute / 60.0 + now.second / 3600.0
    return mean_c + swing_c * math.sin(2 * math.pi * (hour - 9.0) / 24.0)


def daylight(now: datetime) -> float:
    """0 at night, rising to 1 at solar noon; drives solar gain."""
    hour = now.hour + now.minute / 60.0
    return max(0.0, math.sin(math.pi * (hour - 6.0) / 12.0)) if 6.0 <= hour <= 18.0 else 0.0


def cabin_step(cabin_c: float, target_c: float, dt_s: float, tau_s: float) -> float:
    """Exponential approach of the cabin temperature towards `target_c` over `dt_s`."""
    return target_c + (cabin_c - target_c) * math.exp(-dt_s / tau_s)


def passive_target_c(outside_c: float, now: datetime) -> float:
    """Where an unconditioned cabin settles: ambient plus sun."""
    return outside_c + SOLAR_GAIN_C * daylight(now)


def hvac_power_kw(cabin_c: float, setpoint_c: float) -> float:
    """Electrical power the HVAC draws to hold or reach the setpoint."""
    return min(HVAC_MAX_KW, HVAC_BASE_KW + HVAC_KW_PER_DEGREE * abs(setpoint_c - cabin_c))


def clamp_setpoint(value: float) -> float:
    """Tesla accepts setpoints between 15 °C and 28 °C."""
    return max(MIN_TEMP_C, min(MAX_TEMP_C, value))
