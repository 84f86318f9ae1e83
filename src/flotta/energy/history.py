"""Calendar history: windows and buckets in the site's time zone, sums of stored intervals.

Periods (see docs/compatibility.md): `day` is one bucket for the local day of `end_date`;
`week` the 7 local days ending that day; `month` each day of its month up to it; `year`
each month of its year up to it; `lifetime` each year since installation. With a
`start_date`, buckets of the same size run from the one holding it.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flotta.sim.energy_site import FLOW_NAMES

PERIODS = ("day", "week", "month", "year", "lifetime")
MAX_BUCKETS = 1000
MIN_YEAR, MAX_YEAR = 1970, 2200  # keeps bucket arithmetic far from datetime's limits


class HistoryError(ValueError):
    """A bad history parameter; `field` names it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"invalid {field} param: {message}")
        self.field = field


def time_zone(name: str, field: str = "time_zone") -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise HistoryError(field, f"{name!r} is not an IANA time zone name") from None


def parse_instant(raw: str | None, field: str, tz: ZoneInfo, default: datetime) -> datetime:
    """An ISO-8601 timestamp (offset or `Z`) or date; one without offset is local to `tz`."""
    if raw is None or not raw.strip():
        return default.astimezone(tz)
    try:
        parsed = datetime.fromisoformat(raw.strip())
    except ValueError:
        raise HistoryError(
            field, f"{raw!r} is not an ISO-8601 timestamp such as 2026-11-22T23:59:59-08:00"
        ) from None
    if not MIN_YEAR <= parsed.year <= MAX_YEAR:
        raise HistoryError(field, f"must be a date between {MIN_YEAR} and {MAX_YEAR}")
    return parsed.replace(tzinfo=tz) if parsed.tzinfo is None else parsed.astimezone(tz)


def _midnight(day: date, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, time(), tz)


def _month_start(day: date) -> date:
    return day.replace(day=1)


def _next_month(day: date) -> date:
    return date(day.year + day.month // 12, day.month % 12 + 1, 1)


def _floor(day: date, unit: str) -> date:
    if unit == "month":
        return _month_start(day)
    if unit == "year":
        return date(day.year, 1, 1)
    return day


def _advance(day: date, unit: str) -> date:
    if unit == "month":
        return _next_month(day)
    if unit == "year":
        return date(day.year + 1, 1, 1)
    return day + timedelta(days=1)


UNIT = {"day": "day", "week": "day", "month": "day", "year": "month", "lifetime": "year"}


def buckets(
    period: str, end: datetime, start: datetime | None, installed: datetime, tz: ZoneInfo
) -> list[tuple[datetime, datetime]]:
    """Consecutive local [start, end) buckets of `period` ending with the one holding `end`."""
    if period not in PERIODS:
        raise HistoryError("period", f"{period!r} is not one of {', '.join(PERIODS)}")
    unit = UNIT[period]
    last = end.astimezone(tz).date()
    if start is not None:
        first = _floor(start.astimezone(tz).date(), unit)
    elif period == "week":
        first = last - timedelta(days=6)
    elif period == "month":
        first = _month_start(last)
    elif period == "year":
        first = date(last.year, 1, 1)
    elif period == "lifetime":
        first = date(installed.astimezone(tz).year, 1, 1)
    else:
        first = last
    if first > last:
        raise HistoryError("start_date", "must not be after end_date")
    out: list[tuple[datetime, datetime]] = []
    day = first
    while day <= last:
        following = _advance(day, unit)
        out.append((_midnight(day, tz), _midnight(following, tz)))
        day = following
        if len(out) > MAX_BUCKETS:
            raise HistoryError("start_date", f"asks for more than {MAX_BUCKETS} buckets")
    return out


@dataclass(frozen=True, slots=True)
class Bucket:
    start: datetime  # local
    wh: dict[str, int]


def sum_into(
    edges: Sequence[tuple[datetime, datetime]], intervals: Sequence[tuple[datetime, dict[str, int]]]
) -> list[Bucket]:
    """Add each interval (by its UTC start) to the bucket that holds it."""
    starts = [s.astimezone(UTC) for s, _ in edges]
    end = edges[-1][1].astimezone(UTC) if edges else None
    sums = [dict.fromkeys(FLOW_NAMES, 0) for _ in edges]
    for at, wh in intervals:
        index = bisect.bisect_right(starts, at) - 1
        if index < 0 or end is None or at >= end:
            continue
        target = sums[index]
        for name, value in wh.items():
            target[name] += value
    return [Bucket(s, totals) for (s, _), totals in zip(edges, sums, strict=True)]


def energy_entry(bucket: Bucket) -> dict[str, Any]:
    """One `time_series` item of `calendar_history kind=energy` (Wh)."""
    w = bucket.wh
    solar = w["solar_to_home"] + w["solar_to_battery"] + w["solar_to_grid"]
    return {
        "timestamp": bucket.start.isoformat(),
        "solar_energy_exported": solar,
        "generator_energy_exported": 0,
        "grid_energy_imported": w["grid_to_home"] + w["grid_to_battery"],
        "grid_services_energy_imported": 0,
        "grid_services_energy_exported": 0,
        "grid_energy_exported_from_solar": w["solar_to_grid"],
        "grid_energy_exported_from_generator": 0,
        "grid_energy_exported_from_battery": w["battery_to_grid"],
        "battery_energy_exported": w["battery_to_home"] + w["battery_to_grid"],
        "battery_energy_imported_from_grid": w["grid_to_battery"],
        "battery_energy_imported_from_solar": w["solar_to_battery"],
        "battery_energy_imported_from_generator": 0,
        "consumer_energy_imported_from_grid": w["grid_to_home"],
        "consumer_energy_imported_from_solar": w["solar_to_home"],
        "consumer_energy_imported_from_battery": w["battery_to_home"],
        "consumer_energy_imported_from_generator": 0,
        "total_home_usage": w["solar_to_home"] + w["grid_to_home"] + w["battery_to_home"],
        "total_battery_charge": w["solar_to_battery"] + w["grid_to_battery"],
        "total_battery_discharge": w["battery_to_home"] + w["battery_to_grid"],
        "total_solar_generation": solar,
        "total_grid_energy_exported": w["solar_to_grid"] + w["battery_to_grid"],
    }


def charge_sessions(
    intervals: Sequence[tuple[datetime, dict[str, int]]], interval_s: int
) -> list[dict[str, Any]]:
    """Wall-connector sessions: runs of consecutive intervals in which a car drew energy."""
    sessions: list[dict[str, Any]] = []
    last_end: datetime | None = None
    for at, wh in intervals:
        energy = wh.get("wall_connector", 0)
        if energy <= 0:
            continue
        seconds = int(at.timestamp())
        if last_end is not None and at <= last_end and sessions:
            current = sessions[-1]
            current["charge_duration"]["seconds"] += interval_s
            current["energy_added_wh"] += energy
        else:
            sessions.append(
                {
                    "charge_start_time": {"seconds": seconds, "nanos": 0},
                    "charge_duration": {"seconds": interval_s, "nanos": 0},
                    "energy_added_wh": energy,
                }
            )
        last_end = at + timedelta(seconds=interval_s)
    return sessions
