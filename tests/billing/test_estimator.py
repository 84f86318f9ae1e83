"""The spend estimator: the seed's example covered by the credit, and a fleet that exceeds it."""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import pytest
from pydantic import ValidationError

from flotta.billing.estimator import estimate, to_result
from flotta.billing.prices import PriceBook
from flotta.billing.schemas import EstimateRequest, EstimateResult
from flotta.settings import BillingSettings

BOOK = PriceBook.from_settings(BillingSettings())

# Tesla's docs: a typical config streams about 15 signals a minute while driving. This one does:
# Location and VehicleSpeed every 10 s (6 + 6 a minute) and Soc, Odometer and Gear every 60 s
# (1 + 1 + 1 a minute), each active while the car drives, one hour a day (1/24 of the day).
DRIVING_HOUR = [
    {"name": "Location", "interval_seconds": 10, "active_share": "1/24"},
    {"name": "VehicleSpeed", "interval_seconds": 10, "active_share": "1/24"},
    {"name": "Soc", "interval_seconds": 60, "active_share": "1/24"},
    {"name": "Odometer", "interval_seconds": 60, "active_share": "1/24"},
    {"name": "Gear", "interval_seconds": 60, "active_share": "1/24"},
]


def _estimate(**body: Any) -> EstimateResult:
    return to_result(estimate(BOOK, EstimateRequest.model_validate(body)))


def _line(result: EstimateResult, category: str) -> tuple[int, str]:
    found = next(line for line in result.categories if line.category == category)
    return found.quantity, found.cost


def test_the_seeds_example_is_covered_by_the_monthly_credit() -> None:
    """Two vehicles streaming, 100 commands and 2 wakes a day each, for 30 days."""
    result = _estimate(vehicles=2, fields=DRIVING_HOUR, commands_per_day=100, wakes_per_day=2)

    # Streaming: 15 signals a minute x 60 minutes = 900 a day per car;
    # x 2 cars x 30 days = 54,000 signals; ÷ 150,000 per euro = €0.36.
    assert [f.signals for f in result.fields] == [21_600, 21_600, 3_600, 3_600, 3_600]
    assert 15 * 60 * 2 * 30 == 54_000
    assert _line(result, "streaming") == (54_000, "0.36")
    # Commands: 100 x 2 cars x 30 days = 6,000; ÷ 1,000 per euro = €6.00.
    assert _line(result, "commands") == (6_000, "6.00")
    # Wakes: 2 x 2 cars x 30 days = 120; ÷ 50 per euro = €2.40.
    assert _line(result, "wakes") == (120, "2.40")
    assert _line(result, "data") == (0, "0.00")
    # 0.36 + 6.00 + 2.40 = 8.76, within the €10.00 credit: nothing to pay.
    assert (result.subtotal, result.monthly_credit) == ("8.76", "10.00")
    assert (result.credit_applied, result.total) == ("8.76", "0.00")
    assert result.currency == "EUR" and result.days == 30


def test_a_fleet_beyond_the_credit_pays_the_difference_to_the_cent() -> None:
    """3 cars in February 2026 (28 days), checked against amounts computed by hand."""
    result = _estimate(
        vehicles=3,
        month="2026-02",
        fields=[
            {"name": "Soc", "interval_seconds": 7, "active_share": 1},
            {"name": "Location", "interval_seconds": 45, "active_share": 0.3},
        ],
        commands_per_day=150,
        data_per_day=33,
        wakes_per_day=3,
    )
    assert result.days == 28
    # Soc: 86,400 s ÷ 7 s x 3 cars x 28 days = 1,036,800 signals.
    # Location: 86,400 x 0.3 ÷ 45 = 576 a day per car; x 3 x 28 = 48,384.
    # 1,085,184 signals ÷ 150,000 = €7.23456.
    assert [f.signals for f in result.fields] == [1_036_800, 48_384]
    assert _line(result, "streaming") == (1_085_184, "7.23")
    # Commands 150 x 84 car-days = 12,600 → €12.60; data 33 x 84 = 2,772 ÷ 500 → €5.544;
    # wakes 3 x 84 = 252 ÷ 50 → €5.04.
    assert _line(result, "commands") == (12_600, "12.60")
    assert _line(result, "data") == (2_772, "5.54")
    assert _line(result, "wakes") == (252, "5.04")
    # Exact subtotal 7.23456 + 12.60 + 5.544 + 5.04 = 30.41856 → €30.42; rounding the lines
    # first would give 7.23 + 12.60 + 5.54 + 5.04 = 30.41, a cent short.
    assert (result.subtotal_exact, result.subtotal) == ("30.41856", "30.42")
    assert (result.credit_applied, result.total_exact, result.total) == (
        "10.00",
        "20.41856",
        "20.42",
    )


def test_a_month_is_billed_with_its_real_length() -> None:
    def wakes_in(month: str) -> int:
        return _line(_estimate(vehicles=1, wakes_per_day=1, month=month), "wakes")[0]

    assert [wakes_in(m) for m in ("2026-02", "2028-02", "2026-04", "2026-07")] == [28, 29, 30, 31]
    assert _line(_estimate(vehicles=1, wakes_per_day=1, days=7), "wakes")[0] == 7


def test_streaming_is_an_upper_bound_rounded_up_to_a_whole_signal() -> None:
    result = _estimate(
        vehicles=1, days=1, fields=[{"name": "Soc", "interval_seconds": 7, "active_share": 1}]
    )
    assert result.fields[0].signals == 12_343  # 86,400 ÷ 7 = 12,342.86
    assert any("upper bound" in note for note in result.notes)


def test_tiny_amounts_stay_exact() -> None:
    result = _estimate(vehicles=1, days=1, fields=[{"name": "Gear", "interval_seconds": 86_400}])
    streaming = result.categories[0]
    assert (streaming.quantity, streaming.cost, streaming.cost_exact) == (1, "0.00", "1/150000")
    assert Fraction(result.subtotal_exact) == Fraction(1, 150_000)


def test_the_operators_price_book_is_used() -> None:
    book = PriceBook.from_settings(
        BillingSettings(currency="USD", commands_per_currency_unit=500, monthly_credit="0")
    )
    found = to_result(estimate(book, EstimateRequest(vehicles=1, commands_per_day=10, days=30)))
    assert (found.currency, found.subtotal, found.credit_applied, found.total) == (
        "USD",
        "0.60",
        "0.00",
        "0.60",
    )


@pytest.mark.parametrize(
    ("body", "where", "complaint"),
    [
        ({"vehicles": 0}, "vehicles", "greater than or equal to 1"),
        (
            {"vehicles": 1, "fields": [{"name": "Locaton", "interval_seconds": 60}]},
            "fields.0.name",
            "did you mean Location",
        ),
        (
            {"vehicles": 1, "fields": [{"name": "Unknown", "interval_seconds": 60}]},
            "fields.0.name",
            "not a telemetry field",
        ),
        (
            {"vehicles": 1, "fields": [{"name": "Soc", "interval_seconds": 0}]},
            "fields.0.interval_seconds",
            "greater than or equal to 1",
        ),
        (
            {
                "vehicles": 1,
                "fields": [{"name": "Soc", "interval_seconds": 5, "active_share": 1.5}],
            },
            "fields.0.active_share",
            "more than 1",
        ),
        (
            {
                "vehicles": 1,
                "fields": [{"name": "Soc", "interval_seconds": 5, "active_share": "-1"}],
            },
            "fields.0.active_share",
            "not a number from 0 to 1",
        ),
        (
            {"vehicles": 1, "fields": [{"name": "Soc", "interval_seconds": 5}] * 2},
            "fields",
            "listed twice",
        ),
        ({"vehicles": 1, "month": "2026-13"}, "month", "month must be YYYY-MM, e.g. 2026-11"),
        ({"vehicles": 1, "month": "0000-05"}, "month", "month must be YYYY-MM, e.g. 2026-11"),
        ({"vehicles": True}, "vehicles", "a whole number, not true or false"),
        ({"vehicles": 1, "commands_per_day": False}, "commands_per_day", "not true or false"),
        (
            {"vehicles": 1, "fields": [{"name": "Soc", "interval_seconds": True}]},
            "fields.0.interval_seconds",
            "not true or false",
        ),
        (
            {
                "vehicles": 1,
                "fields": [
                    {"name": "Soc", "interval_seconds": 5, "active_share": "1/" + "9" * 5000}
                ],
            },
            "fields.0.active_share",
            "longer than 40 characters: write it as a decimal (0.1) or a fraction (1/24)",
        ),
        ({"vehicles": 1, "month": "2026-02", "days": 28}, "month", "not both"),
        ({"vehicles": 1, "days": 32}, "days", "less than or equal to 31"),
        ({"vehicles": 1, "wakes_per_day": -1}, "wakes_per_day", "greater than or equal to 0"),
    ],
)
def test_bad_input_is_refused_naming_the_field(
    body: dict[str, Any], where: str, complaint: str
) -> None:
    with pytest.raises(ValidationError) as refused:
        EstimateRequest.model_validate(body)
    problems = {".".join(str(part) for part in p["loc"]): p["msg"] for p in refused.value.errors()}
    assert where in problems, problems
    assert complaint in problems[where]
