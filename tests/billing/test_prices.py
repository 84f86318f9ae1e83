"""The price book in settings, and exact money rounded once to the cent."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import pytest
from pydantic import ValidationError

from flotta.billing.categories import Category
from flotta.billing.prices import PriceBook, cents_text, exact_text, parse_exact, round_to_cent
from flotta.settings import BillingSettings, Settings

DEFAULT = PriceBook.from_settings(BillingSettings())


def test_the_default_price_book_is_the_seeds() -> None:
    assert DEFAULT.currency == "EUR"
    assert DEFAULT.units_per_currency_unit == {
        Category.STREAMING: 150_000,
        Category.COMMANDS: 1_000,
        Category.DATA: 500,
        Category.WAKES: 50,
    }
    assert DEFAULT.monthly_credit == 10
    assert DEFAULT.policy == "fair"
    assert DEFAULT.threshold == DEFAULT.monthly_credit


def test_the_reference_example_1211_commands_cost_1_21() -> None:
    cost = DEFAULT.cost(Category.COMMANDS, 1_211)
    assert cost == Fraction("1.211")
    assert cents_text(cost) == "1.21"


def test_one_signal_is_exact_although_no_decimal_holds_it() -> None:
    one = DEFAULT.cost(Category.STREAMING, 1)
    assert exact_text(one) == "1/150000"
    assert one * 150_000 == 1  # a Decimal or micro-unit price would miss this
    assert cents_text(one) == "0.00"


@pytest.mark.parametrize(
    ("exact", "cents"),
    [("0.005", "0.01"), ("0.0049999", "0.00"), ("1.215", "1.22"), ("2/3", "0.67"), ("1/3", "0.33")],
)
def test_rounding_is_half_up_to_the_cent(exact: str, cents: str) -> None:
    assert cents_text(Fraction(exact)) == cents
    assert round_to_cent(Fraction(exact)) == Decimal(cents)


def test_exact_amounts_read_back_unchanged() -> None:
    for amount in (
        Fraction(0),
        Fraction(10),
        Fraction(1211, 1000),
        Fraction(7, 3),
        Fraction(1, 2**30),
    ):
        assert parse_exact(exact_text(amount)) == amount
    assert exact_text(Fraction(10)) == "10.00"
    with pytest.raises(ValueError, match="not an exact amount"):
        parse_exact("1e-3")


def test_operators_configure_the_book_through_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FLOTTA_BILLING__CURRENCY", "USD")
    monkeypatch.setenv("FLOTTA_BILLING__COMMANDS_PER_CURRENCY_UNIT", "800")
    monkeypatch.setenv("FLOTTA_BILLING__MONTHLY_CREDIT", "8.50")
    monkeypatch.setenv("FLOTTA_BILLING__POLICY", "tesla")
    billing = Settings(demo=True).billing
    book = PriceBook.from_settings(billing)
    assert (book.currency, book.policy) == ("USD", "tesla")
    assert book.cost(Category.COMMANDS, 800) == 1
    assert book.monthly_credit == Fraction("8.5") == book.threshold


@pytest.mark.parametrize(
    ("setting", "value", "complaint"),
    [
        ("commands_per_currency_unit", 0, "greater than 0"),
        ("wakes_per_currency_unit", -5, "greater than 0"),
        ("monthly_credit", "10.001", "2 decimal places"),
        ("monthly_credit", 10.5, "decimal string"),
        ("monthly_credit", "-1", "greater than or equal to 0"),
        ("threshold", "NaN", "finite"),
        ("policy", "generous", "'fair' or 'tesla'"),
        ("currency", "euro", "pattern"),
    ],
)
def test_a_bad_price_book_is_refused_naming_the_setting(
    setting: str, value: object, complaint: str
) -> None:
    with pytest.raises(ValidationError) as refused:
        BillingSettings(**{setting: value})
    assert setting in str(refused.value)
    assert complaint in str(refused.value)


def test_a_raised_threshold_is_kept_apart_from_the_credit() -> None:
    billing = BillingSettings(monthly_credit="10.00", threshold="250.00")
    assert PriceBook.from_settings(billing).threshold == 250
