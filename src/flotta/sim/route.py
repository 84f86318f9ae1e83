"""A looped drive route of GPS waypoints around a home point."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

EARTH_RADIUS_MI = 3958.8


def distance_mi(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in miles (haversine)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_MI * math.asin(math.sqrt(a))


def bearing_deg(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Initial compass bearing from point 1 to point 2, 0-360°."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dl = math.radians(lon2 - lon1)
    x = math.sin(dl) * math.cos(p2)
    y = math.cos(p1) * math.sin(p2) - math.sin(p1) * math.cos(p2) * math.cos(dl)
    return (math.degrees(math.atan2(x, y)) + 360.0) % 360.0


@dataclass(frozen=True)
class Position:
    """Where the car is on the route and how it is moving."""

    latitude: float
    longitude: float
    heading: float
    speed_mph: float


class Route:
    """Closed loop of waypoints with a per-leg cruise speed; the car slows near each waypoint."""

    def __init__(self, waypoints: list[tuple[float, float]], speeds_mph: list[float]) -> None:
        if len(waypoints) < 2 or len(speeds_mph) != len(waypoints):
            raise ValueError("a route needs ≥ 2 waypoints and one speed per leg")
        self.waypoints = waypoints
        self.speeds_mph = speeds_mph
        self.legs = [
            distance_mi(*waypoints[i], *waypoints[(i + 1) % len(waypoints)])
            for i in range(len(waypoints))
        ]
        self.length_mi = sum(self.legs)

    @classmethod
    def around(cls, home: tuple[float, float], rng: random.Random, points: int = 8) -> Route:
        """A jittered loop of roughly 2 miles radius around `home`."""
        lat0, lon0 = home
        waypoints = [home]
        for i in range(1, points):
            angle = 2 * math.pi * i / points + rng.uniform(-0.2, 0.2)
            radius_deg = 0.03 * rng.uniform(0.6, 1.0)
            lat = lat0 + radius_deg * math.sin(angle)
            lon = lon0 + radius_deg * math.cos(angle) / max(0.2, math.cos(math.radians(lat0)))
            waypoints.append((lat, lon))
        speeds = [rng.choice((25.0, 35.0, 45.0, 55.0)) for _ in waypoints]
        return cls(waypoints, speeds)

    def position(self, travelled_mi: float) -> Position:
        """Position after `travelled_mi` along the loop (wrapping)."""
        d = travelled_mi % self.length_mi if self.length_mi > 0 else 0.0
        for i, leg in enumerate(self.legs):
            if d <= leg or i == len(self.legs) - 1:
                frac = 0.0 if leg == 0 else min(1.0, d / leg)
                (la1, lo1), (la2, lo2) = self.waypoints[i], self.waypoints[(i + 1) % len(self.legs)]
                lat = la1 + (la2 - la1) * frac
                lon = lo1 + (lo2 - lo1) * frac
                # Ease in and out of each waypoint, as at junctions.
                speed = self.speeds_mph[i] * (0.45 + 0.55 * math.sin(math.pi * frac))
                return Position(lat, lon, bearing_deg(la1, lo1, la2, lo2), speed)
            d -= leg
        raise AssertionError("unreachable: the last leg always matches")
