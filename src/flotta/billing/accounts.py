"""An account's billing settings: the (simulated) payment method, the threshold and budgets.

The card is simulated: only its brand, last four digits and expiry are kept, after the number
passes the Luhn check. Reference §8: the threshold defaults to the monthly credit and can be
raised only once a payment method is on file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from fractions import Fraction

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from flotta.billing.models import AppBudget, BillingAccount
from flotta.billing.prices import PriceBook, exact_text, parse_exact
from flotta.oauth.models import OAuthClient

BRANDS = (
    ("4", "Visa"),
    ("5", "Mastercard"),
    ("34", "American Express"),
    ("37", "American Express"),
)
MAX_AMOUNT = Decimal("1000000")


class BillingSettingsError(ValueError):
    """A billing setting the developer must correct; the message says how."""


@dataclass(frozen=True, slots=True)
class BillingProfile:
    threshold: Fraction
    threshold_is_default: bool
    card: str | None  # "Visa •••• 4242, expires 12/2030"
    budgets: dict[str, Fraction]


def luhn_ok(digits: str) -> bool:
    total = 0
    for i, char in enumerate(reversed(digits)):
        value = int(char) * (2 if i % 2 else 1)
        total += value - 9 if value > 9 else value
    return total % 10 == 0


def parse_amount(text: str, what: str) -> Decimal:
    """A money amount as typed: digits with at most two decimals, non-negative, bounded."""
    cleaned = text.strip()
    if not re.fullmatch(r"\d{1,7}(\.\d{1,2})?", cleaned):
        raise BillingSettingsError(f"{what} must be an amount like 25 or 25.50 (got {text!r})")
    try:
        amount = Decimal(cleaned)
    except InvalidOperation:
        raise BillingSettingsError(f"{what} must be an amount like 25.50") from None
    if amount > MAX_AMOUNT:
        raise BillingSettingsError(f"{what} must be at most {MAX_AMOUNT}")
    return amount


async def profile(db: AsyncSession, book: PriceBook, account_id: int) -> BillingProfile:
    row = await db.get(BillingAccount, account_id)
    budgets = await db.scalars(select(AppBudget).where(AppBudget.account_id == account_id))
    threshold = book.threshold
    if row is not None and row.threshold is not None:
        threshold = parse_exact(row.threshold)
    card = None
    if row is not None and row.card_last4 is not None:
        card = f"{row.card_brand} •••• {row.card_last4}, expires {row.card_expiry}"
    return BillingProfile(
        threshold,
        row is None or row.threshold is None,
        card,
        {b.client_id: parse_exact(b.budget) for b in budgets},
    )


async def _row(db: AsyncSession, account_id: int) -> BillingAccount:
    row = await db.get(BillingAccount, account_id)
    if row is None:
        row = BillingAccount(account_id=account_id)
        db.add(row)
    return row


async def add_card(
    db: AsyncSession, account_id: int, number: str, expiry: str, now: datetime
) -> str:
    """Validate and keep a simulated card (never its full number); returns its description."""
    digits = re.sub(r"[\s-]", "", number)
    if not re.fullmatch(r"\d{13,19}", digits) or not luhn_ok(digits):
        raise BillingSettingsError("the card number is not valid (check the digits)")
    match = re.fullmatch(r"\s*(\d{1,2})\s*/\s*(\d{2}|\d{4})\s*", expiry)
    if match is None:
        raise BillingSettingsError("write the expiry as MM/YY, e.g. 12/30")
    month, year = int(match[1]), int(match[2])
    year += 2000 if year < 100 else 0
    if not 1 <= month <= 12:
        raise BillingSettingsError("the expiry month must be 01 to 12")
    if (year, month) < (now.year, now.month):
        raise BillingSettingsError("the card has expired")
    brand = next((name for prefix, name in BRANDS if digits.startswith(prefix)), "Card")
    row = await _row(db, account_id)
    row.card_brand, row.card_last4 = brand, digits[-4:]
    row.card_expiry, row.card_added_at = f"{month:02d}/{year}", now
    return f"{brand} •••• {digits[-4:]}"


async def set_threshold(db: AsyncSession, book: PriceBook, account_id: int, text: str) -> Fraction:
    """Set the excessive-bill threshold; above the default it needs a payment method."""
    amount = Fraction(parse_amount(text, "the threshold"))
    existing = await db.get(BillingAccount, account_id)
    if amount > book.threshold and (existing is None or existing.card_last4 is None):
        raise BillingSettingsError(
            "add a payment method before raising the threshold above "
            f"{exact_text(book.threshold)} {book.currency}"
        )
    row = await _row(db, account_id)
    row.threshold = exact_text(amount)
    return amount


async def set_budget(db: AsyncSession, account_id: int, client_id: str, text: str) -> None:
    """Set (or, with an empty amount, remove) the monthly budget of one of the account's apps."""
    app = await db.scalar(
        select(OAuthClient).where(
            OAuthClient.client_id == client_id, OAuthClient.owner_id == account_id
        )
    )
    if app is None:
        raise BillingSettingsError(f"no app {client_id!r} on this account")
    existing = await db.get(AppBudget, client_id)
    if not text.strip():
        if existing is not None:
            await db.delete(existing)
        return
    amount = exact_text(Fraction(parse_amount(text, "the budget")))
    if existing is None:
        db.add(AppBudget(client_id=client_id, account_id=account_id, budget=amount))
    else:
        existing.budget = amount
