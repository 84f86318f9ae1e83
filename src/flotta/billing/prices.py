"""The price book and exact money (reference §8).

A price is "N units per 1 currency unit" (150,000 signals per €1), so one signal costs
€1/150,000 = €0.00000666…: no decimal scale, neither `Decimal` nor integer micro-units, holds
that exactly. Money is therefore an exact rational (`Fraction`, integers only, never a float):
quantities stay whole numbers, each cost is quantity ÷ units-per-currency-unit, costs add up
unrounded, and only a total shown as an estimate or invoice total is rounded to the cent, once,
half up (ROUND_HALF_UP: 1,211 commands → 1.211 → 1.21; 0.005 → 0.01).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from typing import TYPE_CHECKING

from flotta.billing.categories import Category

if TYPE_CHECKING:
    from flotta.settings import BillingSettings

# The order the seed's price table uses; reports list categories in it.
CATEGORY_ORDER = (Category.STREAMING, Category.COMMANDS, Category.DATA, Category.WAKES)
UNIT_NAMES = {
    Category.STREAMING: "signal",
    Category.COMMANDS: "command",
    Category.DATA: "data request",
    Category.WAKES: "wake",
}
_EXACT = re.compile(r"^-?\d+(\.\d+)?$|^-?\d+/\d+$")


@dataclass(frozen=True, slots=True)
class PriceBook:
    """How many units of each category cost one currency unit, and the monthly credit."""

    currency: str
    units_per_currency_unit: dict[Category, int]
    monthly_credit: Fraction
    policy: str
    threshold: Fraction

    @classmethod
    def from_settings(cls, billing: BillingSettings) -> PriceBook:
        units = {
            Category.STREAMING: billing.streaming_per_currency_unit,
            Category.COMMANDS: billing.commands_per_currency_unit,
            Category.DATA: billing.data_per_currency_unit,
            Category.WAKES: billing.wakes_per_currency_unit,
        }
        return cls(
            currency=billing.currency,
            units_per_currency_unit=units,
            monthly_credit=Fraction(billing.monthly_credit),
            policy=billing.policy,
            threshold=Fraction(billing.effective_threshold),
        )

    def cost(self, category: Category, quantity: int) -> Fraction:
        """The exact, unrounded cost of `quantity` units of a category."""
        return Fraction(quantity, self.units_per_currency_unit[category])


def _decimal(scaled: int, places: int) -> Decimal:
    """`scaled` * 10^-places built digit by digit, so no context precision can round it."""
    digits = tuple(int(d) for d in str(abs(scaled)))
    return Decimal((1 if scaled < 0 else 0, digits, -places))


def round_to_cent(amount: Fraction) -> Decimal:
    """Round an exact amount to 0.01, half away from zero (Decimal's ROUND_HALF_UP)."""
    cents = abs(amount) * 100
    whole = int(cents + Fraction(1, 2))  # floor of a non-negative number
    return _decimal(-whole if amount < 0 else whole, 2)


def cents_text(amount: Fraction) -> str:
    """The amount rounded to the cent, as a string with two decimals ("1.21")."""
    return format(round_to_cent(amount), "f")


def floor_text(amount: Fraction, places: int = 6) -> str:
    """The amount cut down (never up) to `places` decimals, for display next to exact amounts:
    a credit shown this way is never more than what is really left."""
    scaled = amount.numerator * 10**places // amount.denominator
    return format(_decimal(scaled, places), "f")


def exact_text(amount: Fraction) -> str:
    """The exact amount as text that `Fraction(text)` reads back unchanged: a decimal when
    the amount has a finite decimal expansion ("1.211"), otherwise "numerator/denominator"."""
    denominator = amount.denominator
    twos = fives = 0
    while denominator % 2 == 0:
        denominator //= 2
        twos += 1
    while denominator % 5 == 0:
        denominator //= 5
        fives += 1
    if denominator != 1:
        return f"{amount.numerator}/{amount.denominator}"
    places = max(twos, fives, 2)
    scaled = amount * 10**places
    assert scaled.denominator == 1
    return format(_decimal(scaled.numerator, places), "f")


def parse_exact(text: str) -> Fraction:
    """The inverse of `exact_text`; refuses anything else (floats in exponent form included)."""
    if not _EXACT.match(text):
        raise ValueError(f"not an exact amount: {text!r}")
    return Fraction(text)
