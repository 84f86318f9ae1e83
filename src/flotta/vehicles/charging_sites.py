"""A simulated catalogue of chargers around the simulator's home area (nearby_charging_sites)."""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flotta.sim.route import distance_mi


@dataclass(frozen=True, slots=True)
class ChargingSite:
    id: int
    name: str
    kind: str  # "supercharger" | "destination"
    latitude: float
    longitude: float
    total_stalls: int
    amenities: str
    price_per_kwh: float = 0.0
    closed: bool = False


_SC = "supercharger"
_DEST = "destination"

# Positions cluster around the Fremont factory (sim DEFAULT_HOME) and the south Bay Area.
SITES: tuple[ChargingSite, ...] = (
    ChargingSite(
        101,
        "Fremont, CA - Auto Mall Parkway",
        _SC,
        37.5119,
        -121.9400,
        20,
        "restrooms,restaurant,wifi",
        0.48,
    ),
    ChargingSite(
        102,
        "Fremont, CA - Pacific Commons",
        _SC,
        37.5003,
        -121.9708,
        16,
        "restrooms,restaurant,shopping",
        0.46,
    ),
    ChargingSite(
        103, "Newark, CA - NewPark Mall", _SC, 37.5267, -122.0016, 12, "restrooms,shopping", 0.47
    ),
    ChargingSite(
        104,
        "Milpitas, CA - Great Mall",
        _SC,
        37.4156,
        -121.8986,
        24,
        "restrooms,restaurant,shopping,wifi",
        0.50,
    ),
    ChargingSite(
        105,
        "Union City, CA - Union Landing",
        _SC,
        37.5917,
        -122.0453,
        10,
        "restaurant,shopping",
        0.45,
    ),
    ChargingSite(
        106,
        "San Jose, CA - North First Street",
        _SC,
        37.3915,
        -121.9440,
        40,
        "restrooms,restaurant,lodging",
        0.52,
    ),
    ChargingSite(107, "Hayward, CA - Southland Mall", _SC, 37.6503, -122.1043, 8, "shopping", 0.44),
    ChargingSite(
        108,
        "Livermore, CA - Outlets",
        _SC,
        37.6989,
        -121.8467,
        56,
        "restrooms,restaurant,shopping,wifi",
        0.49,
    ),
    ChargingSite(201, "Hilton Newark Fremont", _DEST, 37.5339, -122.0004, 6, "lodging"),
    ChargingSite(202, "Fremont Hub Shopping Center", _DEST, 37.5488, -121.9869, 4, "shopping"),
    ChargingSite(203, "Warm Springs BART Garage", _DEST, 37.5024, -121.9395, 8, "transit"),
    ChargingSite(204, "Mission Peak Winery", _DEST, 37.5301, -121.9185, 2, "restaurant"),
    ChargingSite(205, "Milpitas Public Library", _DEST, 37.4326, -121.9030, 4, "wifi"),
    ChargingSite(206, "Crowne Plaza Union City", _DEST, 37.5898, -122.0239, 4, "lodging"),
)


def _busyness(site: ChargingSite, at: datetime) -> float:
    """Share of stalls in use: low at night, peaks at lunch and in the evening (local time)."""
    local_hour = (at.hour + at.minute / 60 + site.longitude / 15.0) % 24
    daily = 0.15 + 0.35 * (1 - math.cos(2 * math.pi * (local_hour - 4) / 24)) / 2
    evening = 0.25 * math.exp(-((local_hour - 18) ** 2) / 6)
    # A stable per-site offset, so neighbours do not all look alike.
    offset = hashlib.sha256(f"{site.id}:{at.hour}".encode()).digest()[0] / 255 * 0.2 - 0.1
    return min(0.95, max(0.0, daily + evening + offset))


def available_stalls(site: ChargingSite, at: datetime) -> int:
    return max(0, site.total_stalls - round(site.total_stalls * _busyness(site, at)))


def _site_object(site: ChargingSite, distance: float, at: datetime, detail: bool) -> dict[str, Any]:
    body: dict[str, Any] = {
        "location": {"lat": site.latitude, "long": site.longitude},
        "name": site.name,
        "type": site.kind,
        "distance_miles": round(distance, 3),
    }
    if site.kind == _SC:
        body.update(
            available_stalls=0 if site.closed else available_stalls(site, at),
            total_stalls=site.total_stalls,
            site_closed=site.closed,
        )
    if detail:
        body["id"] = site.id
        body["amenities"] = site.amenities
        if site.kind == _SC:
            body["billing_info"] = f"${site.price_per_kwh:.2f}/kWh"
    return body


def nearby_sites(
    latitude: float,
    longitude: float,
    at: datetime,
    *,
    count: int | None,
    radius_mi: float | None,
    detail: bool,
) -> dict[str, Any]:
    """Tesla's nearby_charging_sites body: each kind sorted by distance, then cut."""
    ranked = sorted(
        ((distance_mi(latitude, longitude, s.latitude, s.longitude), s) for s in SITES),
        key=lambda pair: pair[0],
    )
    if radius_mi is not None:
        ranked = [(d, s) for d, s in ranked if d <= radius_mi]
    out: dict[str, list[dict[str, Any]]] = {_DEST: [], _SC: []}
    for distance, site in ranked:
        bucket = out[site.kind]
        if count is None or len(bucket) < count:
            bucket.append(_site_object(site, distance, at, detail))
    now_ms = int(at.timestamp() * 1000)
    return {
        "congestion_sync_time_utc_secs": int(at.timestamp()) // 60 * 60,
        "destination_charging": out[_DEST],
        "superchargers": out[_SC],
        "timestamp": now_ms,
    }
