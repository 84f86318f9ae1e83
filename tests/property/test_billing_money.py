"""Property tests: the estimate's money is exact, rounded once, credited at most once."""

from __future__ import annotations

import json
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from flotta.billing.estimator import estimate, to_result
from flotta.billing.prices import PriceBook, cents_text, exact_text, parse_exact, round_to_cent
from flotta.billing.schemas import EstimateRequest, EstimateResult
from flotta.settings import BillingSettings

NAMES = ["Location", "Soc", "VehicleSpeed", "Odometer", "Gear", "ChargeState", "InsideTemp"]

shares = st.one_of(
    st.sampled_from(["0", "1", "0.1", "1/24", "0.333", "2/7"]),
    st.fractions(min_value=0, max_value=1, max_denominator=10_000).map(str),
)
fields = st.lists(
    st.fixed_dictionaries(
        {
            "name": st.sampled_from(NAMES),
            "interval_seconds": st.integers(1, 86_400),
            "active_share": shares,
        }
    ),
    max_size=len(NAMES),
    unique_by=lambda f: f["name"],
)
requests = st.builds(
    lambda vehicles, fs, c, d, w, days: EstimateRequest.model_validate(
        {
            "vehicles": vehicles,
            "fields": fs,
            "commands_per_day": c,
            "data_per_day": d,
            "wakes_per_day": w,
            "days": days,
        }
    ),
    st.integers(1, 10_000),
    fields,
    st.integers(0, 5_000),
    st.integers(0, 5_000),
    st.integers(0, 50),
    st.none() | st.integers(1, 31),
)
books = st.builds(
    lambda s, c, d, w, cents: PriceBook.from_settings(
        BillingSettings(
            streaming_per_currency_unit=s,
            commands_per_currency_unit=c,
            data_per_currency_unit=d,
            wakes_per_currency_unit=w,
            monthly_credit=str(Decimal(cents).scaleb(-2)),
        )
    ),
    st.integers(1, 10**7),
    st.integers(1, 10**5),
    st.integers(1, 10**5),
    st.integers(1, 10**4),
    st.integers(0, 100_000),
)


def _result(book: PriceBook, request: EstimateRequest) -> EstimateResult:
    return to_result(estimate(book, request))


@settings(max_examples=300, deadline=None)
@given(book=books, request=requests)
def test_categories_add_up_to_the_subtotal_exactly(
    book: PriceBook, request: EstimateRequest
) -> None:
    result = _result(book, request)
    lines = sum((parse_exact(line.cost_exact) for line in result.categories), Fraction(0))
    assert lines == parse_exact(result.subtotal_exact)
    for line in result.categories:
        assert parse_exact(line.cost_exact) == Fraction(line.quantity, line.units_per_currency_unit)


@settings(max_examples=300, deadline=None)
@given(book=books, request=requests)
def test_rounding_happens_once_on_each_total(book: PriceBook, request: EstimateRequest) -> None:
    result = _result(book, request)
    exact = {line.category: parse_exact(line.cost_exact) for line in result.categories}
    # Each shown total is the rounding of the exact sum, never a sum of rounded lines.
    assert result.subtotal == cents_text(sum(exact.values(), Fraction(0)))
    assert result.total == cents_text(parse_exact(result.total_exact))
    for line in result.categories:
        assert line.cost == cents_text(exact[line.category])
    # Rounded figures still agree with each other: subtotal - credit applied = total.
    shown = Decimal(result.subtotal) - Decimal(result.credit_applied)
    assert shown == Decimal(result.total)


@settings(max_examples=300, deadline=None)
@given(book=books, request=requests)
def test_the_credit_applies_at_most_once_and_never_below_zero(
    book: PriceBook, request: EstimateRequest
) -> None:
    result = _result(book, request)
    subtotal = parse_exact(result.subtotal_exact)
    applied = parse_exact(result.credit_applied_exact)
    assert applied == min(book.monthly_credit, subtotal)
    assert parse_exact(result.total_exact) == subtotal - applied >= 0
    assert Decimal(result.total) >= 0


@settings(max_examples=200, deadline=None)
@given(book=books, request=requests)
def test_the_result_round_trips_through_json(book: PriceBook, request: EstimateRequest) -> None:
    result = _result(book, request)
    wire: dict[str, Any] = json.loads(json.dumps(result.model_dump(mode="json")))
    assert EstimateResult.model_validate(wire) == result
    for line in wire["categories"]:
        exact = parse_exact(line["cost_exact"])
        assert exact == Fraction(line["quantity"], line["units_per_currency_unit"])
        if "/" not in line["cost_exact"]:
            assert Decimal(line["cost_exact"]) == exact  # a finite decimal reads as Decimal too


@given(st.fractions())
def test_exact_text_reads_back_unchanged(amount: Fraction) -> None:
    assert parse_exact(exact_text(amount)) == amount


@given(
    st.decimals(
        allow_nan=False, allow_infinity=False, places=6, min_value=-(10**9), max_value=10**9
    )
)
def test_cent_rounding_matches_decimal_round_half_up(value: Decimal) -> None:
    expected = value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    assert round_to_cent(Fraction(value)) == expected
