"""Invoices: a month's usage priced per category and app, the credit applied once, and the
total rounded to the cent once (reference §8). The current month is a live draft; closing a
month writes its invoice, and closing it again finds that invoice and changes nothing."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from fractions import Fraction
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from flotta.billing.categories import Category
from flotta.billing.models import InvoiceRow
from flotta.billing.prices import CATEGORY_ORDER, PriceBook, cents_text, exact_text, parse_exact
from flotta.billing.queries import (
    accounts_with_usage,
    by_app_and_category,
    month_bounds,
    month_rows,
)
from flotta.oauth.models import OAuthClient

# How long after a month's end it can be closed: a request admitted before midnight is billed
# to that month when it is answered, and a command may run for up to two minutes; its usage
# reaches the ledger about a second after that.
CLOSE_AFTER = timedelta(minutes=5)


class MonthNotOver(ValueError):
    """A month can be closed only once it has ended."""


@dataclass(frozen=True, slots=True)
class InvoiceLine:
    category: Category
    client_id: str
    app: str
    quantity: int
    units_per_currency_unit: int
    amount: Fraction

    def to_json(self) -> dict[str, Any]:
        return {
            "category": self.category.value,
            "client_id": self.client_id,
            "app": self.app,
            "quantity": self.quantity,
            "units_per_currency_unit": self.units_per_currency_unit,
            "amount": exact_text(self.amount),
        }

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> InvoiceLine:
        return cls(
            Category(raw["category"]),
            raw["client_id"],
            raw["app"],
            int(raw["quantity"]),
            int(raw["units_per_currency_unit"]),
            parse_exact(raw["amount"]),
        )


@dataclass(frozen=True, slots=True)
class Invoice:
    """One account's month. `closed_at` is None for the current month's draft."""

    account_id: int
    month: str
    currency: str
    lines: tuple[InvoiceLine, ...]
    subtotal: Fraction
    credit_applied: Fraction
    total: str  # rounded to the cent, once
    closed_at: datetime | None = None

    def subtotal_for(self, category: Category) -> Fraction:
        return sum((ln.amount for ln in self.lines if ln.category == category), Fraction(0))


def price(
    book: PriceBook,
    account_id: int,
    month: str,
    usage: dict[tuple[str, Category], int],
    names: dict[str, str],
) -> Invoice:
    """Price usage per (app, category): exact line amounts, then the credit, then one rounding."""
    order = {category: i for i, category in enumerate(CATEGORY_ORDER)}
    lines = tuple(
        InvoiceLine(
            category,
            client_id,
            names.get(client_id, client_id),
            quantity,
            book.units_per_currency_unit[category],
            book.cost(category, quantity),
        )
        for (client_id, category), quantity in sorted(
            usage.items(), key=lambda item: (order[item[0][1]], item[0][0])
        )
        if quantity
    )
    subtotal = sum((line.amount for line in lines), Fraction(0))
    credit = min(book.monthly_credit, subtotal)
    return Invoice(
        account_id, month, book.currency, lines, subtotal, credit, cents_text(subtotal - credit)
    )


async def app_names(db: AsyncSession, client_ids: set[str]) -> dict[str, str]:
    rows = await db.execute(
        select(OAuthClient.client_id, OAuthClient.name).where(OAuthClient.client_id.in_(client_ids))
    )
    return {client_id: name for client_id, name in rows}


async def draft(db: AsyncSession, book: PriceBook, account_id: int, month: str) -> Invoice:
    """The invoice the month's usage so far would give."""
    usage = by_app_and_category(await month_rows(db, account_id, month))
    names = await app_names(db, {client_id for client_id, _ in usage})
    return price(book, account_id, month, usage, names)


def from_row(row: InvoiceRow) -> Invoice:
    return Invoice(
        row.account_id,
        row.month,
        row.currency,
        tuple(InvoiceLine.from_json(line) for line in row.lines),
        parse_exact(row.subtotal),
        parse_exact(row.credit_applied),
        row.total,
        row.closed_at,
    )


async def closed(db: AsyncSession, account_id: int, month: str) -> Invoice | None:
    row = await db.scalar(
        select(InvoiceRow).where(InvoiceRow.account_id == account_id, InvoiceRow.month == month)
    )
    return None if row is None else from_row(row)


async def closed_months(db: AsyncSession, account_id: int) -> list[Invoice]:
    rows = await db.scalars(
        select(InvoiceRow).where(InvoiceRow.account_id == account_id).order_by(InvoiceRow.month)
    )
    return [from_row(row) for row in rows]


async def invoice_for(db: AsyncSession, book: PriceBook, account_id: int, month: str) -> Invoice:
    """A closed month's invoice, or the draft of a month not closed yet."""
    return await closed(db, account_id, month) or await draft(db, book, account_id, month)


@dataclass(frozen=True, slots=True)
class Closing:
    month: str
    created: list[Invoice]
    existing: list[Invoice]


async def close_month(
    sessions: async_sessionmaker[AsyncSession], book: PriceBook, month: str, now: datetime
) -> Closing:
    """Write the invoice of every account that used anything in `month`; idempotent."""
    _, end = month_bounds(month)
    closable = datetime.combine(end, time(), UTC) + CLOSE_AFTER
    if now < closable:
        raise MonthNotOver(
            f"{month} is not over until {end.isoformat()} 00:00 UTC, and can be closed from "
            f"{closable:%H:%M} UTC that day: requests admitted before the month ended may still "
            "be running, and their usage reaches the ledger after them"
        )
    created: list[Invoice] = []
    existing: list[Invoice] = []
    async with sessions() as db:
        accounts = await accounts_with_usage(db, month)
    for account_id in accounts:
        try:
            async with sessions() as db, db.begin():
                found = await closed(db, account_id, month)
                if found is not None:
                    existing.append(found)
                    continue
                invoice = await draft(db, book, account_id, month)
                db.add(to_row(invoice, now))
            created.append(_closed(invoice, now))
        except IntegrityError:  # another `close` wrote it first
            async with sessions() as db:
                found = await closed(db, account_id, month)
            if found is not None:
                existing.append(found)
    return Closing(month, created, existing)


def _closed(invoice: Invoice, now: datetime) -> Invoice:
    return Invoice(
        invoice.account_id,
        invoice.month,
        invoice.currency,
        invoice.lines,
        invoice.subtotal,
        invoice.credit_applied,
        invoice.total,
        now,
    )


def to_row(invoice: Invoice, now: datetime) -> InvoiceRow:
    return InvoiceRow(
        account_id=invoice.account_id,
        month=invoice.month,
        currency=invoice.currency,
        lines=[line.to_json() for line in invoice.lines],
        subtotal=exact_text(invoice.subtotal),
        credit_applied=exact_text(invoice.credit_applied),
        total=invoice.total,
        closed_at=now,
    )
