"""The spend estimator (the seed's "estimate your spend"): a month's usage priced exactly.

Streaming is an upper bound: a field sends at most one value per `interval_seconds` while it
is active (Tesla sends a value only when it changes, and never more often than the interval),
so a field streams at most 86,400 * share / interval values a day per vehicle; the month's count
is rounded up to a whole signal. Commands, data requests and wakes are per vehicle per day.
"""

from __future__ import annotations

import calendar
import math
from dataclasses import dataclass
from fractions import Fraction

from flotta.billing.categories import Category
from flotta.billing.prices import CATEGORY_ORDER, UNIT_NAMES, PriceBook, cents_text, exact_text
from flotta.billing.schemas import (
    CategoryLine,
    EstimateRequest,
    EstimateResult,
    FieldEstimate,
    StreamedField,
    parse_share,
)

SECONDS_PER_DAY = 86_400
DEFAULT_DAYS = 30
ROUNDING = (
    "Costs add up exactly; each total shown is rounded once to 0.01, half up (ROUND_HALF_UP). "
    "Category costs are shown rounded for reading and may not add up to the rounded subtotal."
)
NOTES = (
    "Streaming is an upper bound: each field sends at most one value per interval while "
    "active; a field whose value does not change sends less.",
    "The monthly credit is applied once per account and never exceeds the subtotal.",
)


@dataclass(frozen=True, slots=True)
class Estimate:
    """A month's usage with exact (unrounded) costs."""

    book: PriceBook
    request: EstimateRequest
    days: int
    field_signals: tuple[tuple[StreamedField, int], ...]
    quantities: dict[Category, int]
    costs: dict[Category, Fraction]
    subtotal: Fraction
    credit_applied: Fraction
    total: Fraction


def days_billed(request: EstimateRequest) -> int:
    """Days in the estimated month: `month`'s real length, `days`, or 30."""
    if request.month is not None:
        year, month = (int(part) for part in request.month.split("-"))
        return calendar.monthrange(year, month)[1]
    return request.days if request.days is not None else DEFAULT_DAYS


def signals_in_month(field: StreamedField, vehicles: int, days: int) -> int:
    """The most values one field can stream across the fleet in `days`, rounded up."""
    share = parse_share(field.active_share)
    exact = Fraction(SECONDS_PER_DAY) * share / field.interval_seconds * vehicles * days
    return math.ceil(exact)


def estimate(book: PriceBook, request: EstimateRequest) -> Estimate:
    """Price a month of the described usage; rounding is left to the presentation."""
    days = days_billed(request)
    per_field = tuple(
        (field, signals_in_month(field, request.vehicles, days)) for field in request.fields
    )
    fleet_days = request.vehicles * days
    quantities = {
        Category.STREAMING: sum(signals for _, signals in per_field),
        Category.COMMANDS: request.commands_per_day * fleet_days,
        Category.DATA: request.data_per_day * fleet_days,
        Category.WAKES: request.wakes_per_day * fleet_days,
    }
    costs = {category: book.cost(category, quantities[category]) for category in CATEGORY_ORDER}
    subtotal = sum(costs.values(), Fraction(0))
    applied = min(book.monthly_credit, subtotal)
    return Estimate(
        book=book,
        request=request,
        days=days,
        field_signals=per_field,
        quantities=quantities,
        costs=costs,
        subtotal=subtotal,
        credit_applied=applied,
        total=subtotal - applied,
    )


def to_result(found: Estimate) -> EstimateResult:
    """The estimate as the API, CLI and portal show it: cents for reading, exact alongside."""
    book = found.book
    return EstimateResult(
        currency=book.currency,
        vehicles=found.request.vehicles,
        days=found.days,
        month=found.request.month,
        fields=[
            FieldEstimate(
                name=field.name,
                interval_seconds=field.interval_seconds,
                active_share=field.active_share,
                signals=signals,
            )
            for field, signals in found.field_signals
        ],
        categories=[
            CategoryLine(
                category=category.value,
                unit=UNIT_NAMES[category],
                quantity=found.quantities[category],
                units_per_currency_unit=book.units_per_currency_unit[category],
                cost=cents_text(found.costs[category]),
                cost_exact=exact_text(found.costs[category]),
            )
            for category in CATEGORY_ORDER
        ],
        subtotal=cents_text(found.subtotal),
        subtotal_exact=exact_text(found.subtotal),
        monthly_credit=cents_text(book.monthly_credit),
        credit_applied=cents_text(found.credit_applied),
        credit_applied_exact=exact_text(found.credit_applied),
        total=cents_text(found.total),
        total_exact=exact_text(found.total),
        rounding=ROUNDING,
        notes=list(NOTES),
    )
