"""Tariffs: the three shapes clients send, their validation, and the period at a time."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from flotta.sim.energy_tariff import TariffError, default_tariff, parse_tou_settings

ROME = ZoneInfo("Europe/Rome")
V2 = {
    "tariff_content_v2": {
        "name": "Flat with evening peak",
        "utility": "Test",
        "energy_charges": {"Summer": {"rates": {"ON_PEAK": 0.4, "OFF_PEAK": 0.1}}},
        "seasons": {
            "Summer": {
                "fromMonth": 1,
                "toMonth": 12,
                "fromDay": 1,
                "toDay": 31,
                "tou_periods": {
                    "ON_PEAK": {
                        "periods": [
                            {"fromDayOfWeek": 0, "toDayOfWeek": 6, "fromHour": 17, "toHour": 21}
                        ]
                    },
                    "OFF_PEAK": {"periods": [{"fromHour": 0, "toHour": 0}]},
                },
            }
        },
    }
}


def test_v2_tariff_periods() -> None:
    tariff = parse_tou_settings(V2)
    assert tariff.period_at(datetime(2026, 3, 4, 18, 30, tzinfo=ROME)) == "ON_PEAK"
    assert tariff.period_at(datetime(2026, 3, 4, 21, 0, tzinfo=ROME)) == "OFF_PEAK"


def test_default_tariff_has_a_weekday_evening_peak() -> None:
    tariff = default_tariff()
    assert tariff.period_at(datetime(2026, 11, 23, 17, 0, tzinfo=ROME)) == "ON_PEAK"  # Monday
    assert tariff.period_at(datetime(2026, 11, 22, 17, 0, tzinfo=ROME)) == "OFF_PEAK"  # Sunday


def test_teslapy_tariff_content_with_plain_lists() -> None:
    tariff = parse_tou_settings(
        {
            "tariff_content": {
                "seasons": {
                    "Summer": {
                        "fromMonth": 1,
                        "toMonth": 12,
                        "tou_periods": {"ON_PEAK": [{"fromHour": 22, "toHour": 2}]},
                    },
                    "Winter": {"tou_periods": {}},
                },
                "energy_charges": {"ALL": {"ALL": 0}, "Summer": {"ON_PEAK": 0.3}},
            }
        }
    )
    assert tariff.period_at(datetime(2026, 1, 1, 1, 0, tzinfo=ROME)) == "ON_PEAK"  # wraps
    assert tariff.period_at(datetime(2026, 1, 1, 3, 0, tzinfo=ROME)) == "OFF_PEAK"


@pytest.mark.parametrize(
    ("tou", "field"),
    [
        ({}, "tou_settings"),
        ({"tariff_content_v2": {"seasons": {}}}, "tou_settings.tariff_content_v2.seasons"),
        (
            {"tariff_content_v2": {"seasons": {"S": {"tou_periods": {"PEAK": []}}}}},
            "tou_settings.tariff_content_v2.seasons.S.tou_periods",
        ),
        (
            {
                "tariff_content_v2": {
                    "seasons": {"S": {"tou_periods": {"ON_PEAK": [{"fromHour": 25}]}}}
                }
            },
            "tou_settings.tariff_content_v2.seasons.S.tou_periods.ON_PEAK[0].fromHour",
        ),
        (
            {
                "tariff_content_v2": {
                    "seasons": {"S": {}},
                    "energy_charges": {"S": {"rates": {"ON_PEAK": -1}}},
                }
            },
            "tou_settings.tariff_content_v2.energy_charges.S.ON_PEAK",
        ),
        (
            {
                "schedule": [
                    {"target": "peak", "week_days": [9], "start_seconds": 0, "end_seconds": 1}
                ]
            },
            "tou_settings.schedule[0].week_days",
        ),
        ({"optimization_strategy": "cheap", "schedule": []}, "tou_settings.optimization_strategy"),
    ],
)
def test_bad_tariffs_name_the_field(tou: dict[str, object], field: str) -> None:
    with pytest.raises(TariffError) as caught:
        parse_tou_settings(tou)
    assert caught.value.field == field
    assert str(caught.value).startswith(f"invalid {field} param:")
