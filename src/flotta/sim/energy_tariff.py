"""Time-of-use tariffs: validate what clients send and tell which period an instant is in.

Three shapes arrive at `time_of_use_settings`: `tariff_content_v2` (tesla-fleet-api),
`tariff_content` (TeslaPy's `create_tariff`, periods as plain lists) and the older
`{"optimization_strategy", "schedule": [...]}`. All become one `Tariff`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

PERIODS = ("ON_PEAK", "PARTIAL_PEAK", "OFF_PEAK", "SUPER_OFF_PEAK")
PEAKS = frozenset({"ON_PEAK", "PARTIAL_PEAK"})
# Where windows overlap the pricier period wins; OFF_PEAK is the background.
RANK = {"ON_PEAK": 0, "PARTIAL_PEAK": 1, "SUPER_OFF_PEAK": 2, "OFF_PEAK": 3}
STRATEGIES = ("economics", "balanced")
TARGETS = ("peak", "partial_peak", "off_peak", "super_off_peak")


class TariffError(ValueError):
    """A tariff that cannot be used; `field` is the path of the offending member."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"invalid {field} param: {message}")
        self.field = field


@dataclass(frozen=True, slots=True)
class Window:
    """One weekly slot: days of week (0 = Sunday … 6 = Saturday) and minutes of the day."""

    period: str
    first_day: int
    last_day: int
    start_minute: int
    end_minute: int  # 0 or equal to start means "until midnight"
    months: tuple[int, int] = (1, 12)

    def covers(self, weekday: int, minute: int, month: int) -> bool:
        if not _in_range(month, *self.months):
            return False
        if not _in_range(weekday, self.first_day, self.last_day):
            return False
        start, end = self.start_minute, self.end_minute
        if end in (0, start):
            end = 24 * 60  # "to 00:00" ends at midnight
        if end > start:
            return start <= minute < end
        return minute >= start or minute < end  # wraps past midnight


def _in_range(value: int, first: int, last: int) -> bool:
    return first <= value <= last if first <= last else value >= first or value <= last


@dataclass(frozen=True, slots=True)
class Tariff:
    """The validated tariff, plus the document as the client sent it (echoed in site_info)."""

    windows: tuple[Window, ...]
    strategy: str
    document: dict[str, Any]

    def period_at(self, local: datetime) -> str:
        """The TOU period of a local time; OFF_PEAK where no window says otherwise."""
        weekday = (local.weekday() + 1) % 7  # Tesla counts Sunday as 0
        minute = local.hour * 60 + local.minute
        for window in self.windows:
            if window.covers(weekday, minute, local.month):
                return window.period
        return "OFF_PEAK"


def default_tariff() -> Tariff:
    """Weekday evening peak 16:00-21:00, the rest off-peak: a typical residential plan."""
    return parse_tou_settings(
        {
            "optimization_strategy": "economics",
            "schedule": [
                {
                    "target": "peak",
                    "week_days": [1, 2, 3, 4, 5],
                    "start_seconds": 16 * 3600,
                    "end_seconds": 21 * 3600,
                },
                {
                    "target": "off_peak",
                    "week_days": [0, 1, 2, 3, 4, 5, 6],
                    "start_seconds": 0,
                    "end_seconds": 0,
                },
            ],
        }
    )


def parse_tou_settings(tou: Any) -> Tariff:
    """Validate a `tou_settings` object; TariffError names the first bad member."""
    if not isinstance(tou, dict):
        raise TariffError("tou_settings", "must be a JSON object")
    for key in ("tariff_content_v2", "tariff_content"):
        if key in tou:
            windows = _tariff_windows(tou[key], f"tou_settings.{key}")
            return Tariff(_ranked(windows), "economics", dict(tou))
    if "schedule" in tou:
        strategy = tou.get("optimization_strategy", "economics")
        if strategy not in STRATEGIES:
            raise TariffError(
                "tou_settings.optimization_strategy", f"must be one of {', '.join(STRATEGIES)}"
            )
        return Tariff(_ranked(_schedule_windows(tou["schedule"])), str(strategy), dict(tou))
    raise TariffError("tou_settings", "needs tariff_content_v2 (or tariff_content, or schedule)")


def _ranked(windows: tuple[Window, ...]) -> tuple[Window, ...]:
    return tuple(sorted(windows, key=lambda w: RANK[w.period]))


def _int(value: Any, field: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise TariffError(field, f"must be an integer from {low} to {high}")
    return value


def _tariff_windows(content: Any, where: str) -> tuple[Window, ...]:
    if not isinstance(content, dict):
        raise TariffError(where, "must be a JSON object")
    seasons = content.get("seasons")
    if not isinstance(seasons, dict) or not seasons:
        raise TariffError(f"{where}.seasons", "must name at least one season")
    _check_charges(content.get("energy_charges", {}), f"{where}.energy_charges")
    windows: list[Window] = []
    for name, season in seasons.items():
        windows += _season_windows(season, f"{where}.seasons.{name}")
    return tuple(windows)


def _season_windows(season: Any, where: str) -> list[Window]:
    if not isinstance(season, dict):
        raise TariffError(where, "must be a JSON object")
    periods = season.get("tou_periods", {})
    if not isinstance(periods, dict):
        raise TariffError(f"{where}.tou_periods", "must be a JSON object")
    if not periods:
        return []  # TeslaPy sends an empty "Winter" season
    months = (
        _int(season.get("fromMonth", 1), f"{where}.fromMonth", 1, 12),
        _int(season.get("toMonth", 12), f"{where}.toMonth", 1, 12),
    )
    windows = []
    for period, slots in periods.items():
        if period not in PERIODS:
            raise TariffError(
                f"{where}.tou_periods", f"{period!r} is not one of {', '.join(PERIODS)}"
            )
        listed = slots.get("periods") if isinstance(slots, dict) else slots
        if not isinstance(listed, list):
            raise TariffError(f"{where}.tou_periods.{period}", "must be a list of periods")
        for i, slot in enumerate(listed):
            windows.append(_slot(slot, period, months, f"{where}.tou_periods.{period}[{i}]"))
    return windows


def _slot(slot: Any, period: str, months: tuple[int, int], where: str) -> Window:
    if not isinstance(slot, dict):
        raise TariffError(where, "must be a JSON object")
    return Window(
        period,
        _int(slot.get("fromDayOfWeek", 0), f"{where}.fromDayOfWeek", 0, 6),
        _int(slot.get("toDayOfWeek", 6), f"{where}.toDayOfWeek", 0, 6),
        _int(slot.get("fromHour", 0), f"{where}.fromHour", 0, 24) * 60
        + _int(slot.get("fromMinute", 0), f"{where}.fromMinute", 0, 59),
        _int(slot.get("toHour", 0), f"{where}.toHour", 0, 24) * 60
        + _int(slot.get("toMinute", 0), f"{where}.toMinute", 0, 59),
        months,
    )


def _check_charges(charges: Any, where: str) -> None:
    """Prices are numbers ≥ 0, either `{season: {"rates": {period: price}}}` or flat."""
    if not isinstance(charges, dict):
        raise TariffError(where, "must be a JSON object")
    for season, rates in charges.items():
        table = rates.get("rates", rates) if isinstance(rates, dict) else None
        if not isinstance(table, dict):
            raise TariffError(f"{where}.{season}", "must map periods to prices")
        for period, price in table.items():
            ok = isinstance(price, int | float) and not isinstance(price, bool) and price >= 0
            if not ok:
                raise TariffError(f"{where}.{season}.{period}", "must be a price of 0 or more")


def _schedule_windows(schedule: Any) -> tuple[Window, ...]:
    if not isinstance(schedule, list):
        raise TariffError("tou_settings.schedule", "must be a list")
    windows = []
    for i, entry in enumerate(schedule):
        where = f"tou_settings.schedule[{i}]"
        if not isinstance(entry, dict):
            raise TariffError(where, "must be a JSON object")
        target = entry.get("target")
        if target not in TARGETS:
            raise TariffError(f"{where}.target", f"must be one of {', '.join(TARGETS)}")
        days = entry.get("week_days")
        if not isinstance(days, list) or not days:
            raise TariffError(f"{where}.week_days", "must be a non-empty list of days 0-6")
        start = _int(entry.get("start_seconds"), f"{where}.start_seconds", 0, 86400)
        end = _int(entry.get("end_seconds"), f"{where}.end_seconds", 0, 86400)
        period = "ON_PEAK" if target == "peak" else str(target).upper()
        for day in days:
            d = _int(day, f"{where}.week_days", 0, 6)
            windows.append(Window(period, d, d, start // 60, end // 60))
    return tuple(windows)
