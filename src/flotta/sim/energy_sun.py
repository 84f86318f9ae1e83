"""Sunshine and household demand as pure functions of time: irradiance, clouds and load.

Everything here depends only on the instant and a seed, so the live simulator and the demo's
back-filled history tell the same story about the same hour.
"""

from __future__ import annotations

import math
from datetime import datetime
from functools import lru_cache
from zoneinfo import ZoneInfo

SOLAR_CONSTANT_W_M2 = 1353.0
PANEL_EFFICIENCY = 0.85  # inverter, wiring and temperature losses of a residential array
CLOUD_BUCKET_S = 600  # a passing cloud takes minutes, not seconds
LOAD_BUCKET_S = 300
_MASK = (1 << 64) - 1


def unit_noise(seed: int, n: int) -> float:
    """A reproducible value in [0, 1) for (seed, n): splitmix64, no shared RNG state."""
    z = (seed * 0x9E3779B97F4A7C15 + n * 0xBF58476D1CE4E5B9 + 0x94D049BB133111EB) & _MASK
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
    return ((z ^ (z >> 31)) >> 11) / float(1 << 53)


def smooth_noise(seed: int, t: float, bucket_s: int) -> float:
    """Noise in [0, 1) that drifts linearly between bucket values, so power has no jumps."""
    index, frac = divmod(t / bucket_s, 1.0)
    a = unit_noise(seed, int(index))
    b = unit_noise(seed, int(index) + 1)
    return a + (b - a) * frac


def sun_elevation_sin(latitude: float, longitude: float, when: datetime) -> float:
    """Sine of the sun's elevation: declination by day of year, hour angle by solar time."""
    day = when.timetuple().tm_yday
    declination = math.radians(23.44) * math.sin(2 * math.pi * (284 + day) / 365.0)
    hours = when.hour + when.minute / 60.0 + when.second / 3600.0
    hour_angle = math.radians(15.0 * (hours + longitude / 15.0 - 12.0))
    lat = math.radians(latitude)
    return math.sin(lat) * math.sin(declination) + math.cos(lat) * math.cos(declination) * math.cos(
        hour_angle
    )


def clear_sky_irradiance(elevation_sin: float) -> float:
    """Direct irradiance on a sun-facing panel (W/m²), Meinel's air-mass attenuation."""
    if elevation_sin <= 0.0:
        return 0.0
    air_mass = 1.0 / max(elevation_sin, 0.02)
    return float(SOLAR_CONSTANT_W_M2 * 0.7 ** (air_mass**0.678))


def cloud_cover(seed: int, when: datetime) -> float:
    """Fraction of sunlight blocked: a cloudiness for the day, with clouds passing by."""
    t = when.timestamp()
    day_cloudiness = 0.75 * unit_noise(seed ^ 0x5EED, int(t // 86400)) ** 2
    passing = smooth_noise(seed, t, CLOUD_BUCKET_S)
    return min(0.95, day_cloudiness * (0.4 + 1.2 * passing))


def solar_power_w(
    kwp: float, latitude: float, longitude: float, seed: int, when: datetime
) -> float:
    """What an array of `kwp` peak kilowatts produces at `when` (W)."""
    if kwp <= 0:
        return 0.0
    irradiance = clear_sky_irradiance(sun_elevation_sin(latitude, longitude, when))
    if irradiance <= 0.0:
        return 0.0
    return kwp * irradiance * PANEL_EFFICIENCY * (1.0 - cloud_cover(seed, when))


@lru_cache(maxsize=64)
def zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def _bump(hour: float, centre: float, width: float) -> float:
    distance = min(abs(hour - centre), 24.0 - abs(hour - centre))
    return math.exp(-((distance / width) ** 2))


def daily_profile(local_hour: float) -> float:
    """A household's demand relative to its base load: night low, morning and evening peaks."""
    return 0.45 + 1.1 * _bump(local_hour, 7.5, 1.2) + 1.8 * _bump(local_hour, 19.0, 2.0)


def house_load_w(base_w: float, time_zone: str, seed: int, when: datetime) -> float:
    """The home's own demand (W), without any vehicle charging."""
    local = when.astimezone(zone(time_zone))
    hour = local.hour + local.minute / 60.0 + local.second / 3600.0
    noise = smooth_noise(seed ^ 0x10AD, when.timestamp(), LOAD_BUCKET_S)
    return base_w * daily_profile(hour) * (0.8 + 0.4 * noise)
