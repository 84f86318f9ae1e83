"""Every read of the ledger: month totals, and usage broken down for the dashboard."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from flotta.billing.categories import Category
from flotta.billing.models import UsageDaily


def month_of(day: date) -> str:
    """The billing cycle a UTC day falls in: "YYYY-MM" (cycles start on the 1st)."""
    return f"{day.year:04d}-{day.month:02d}"


def month_bounds(month: str) -> tuple[date, date]:
    """The first day of `month` ("YYYY-MM") and of the month after it."""
    year, number = (int(part) for part in month.split("-"))
    start = date(year, number, 1)
    end = date(year + 1, 1, 1) if number == 12 else date(year, number + 1, 1)
    return start, end


async def month_quantities(db: AsyncSession, account_id: int, month: str) -> dict[Category, int]:
    """Units used per category by an account in a month."""
    start, end = month_bounds(month)
    rows = await db.execute(
        select(UsageDaily.category, func.sum(UsageDaily.quantity))
        .where(UsageDaily.account_id == account_id, UsageDaily.day >= start, UsageDaily.day < end)
        .group_by(UsageDaily.category)
    )
    return {Category(category): int(total) for category, total in rows}


@dataclass(frozen=True, slots=True)
class UsageRow:
    """One row of the daily totals."""

    client_id: str
    device: str
    category: Category
    day: date
    quantity: int


async def month_rows(db: AsyncSession, account_id: int, month: str) -> list[UsageRow]:
    """The account's daily totals for a month, oldest first."""
    start, end = month_bounds(month)
    rows = await db.execute(
        select(UsageDaily)
        .where(UsageDaily.account_id == account_id, UsageDaily.day >= start, UsageDaily.day < end)
        .order_by(UsageDaily.day, UsageDaily.client_id, UsageDaily.device, UsageDaily.category)
    )
    return [
        UsageRow(r.client_id, r.device, Category(r.category), r.day, r.quantity)
        for r in rows.scalars()
    ]


async def accounts_with_usage(db: AsyncSession, month: str) -> list[int]:
    """The accounts that used anything billable in a month."""
    start, end = month_bounds(month)
    rows = await db.scalars(
        select(UsageDaily.account_id)
        .where(UsageDaily.day >= start, UsageDaily.day < end)
        .group_by(UsageDaily.account_id)
        .order_by(UsageDaily.account_id)
    )
    return list(rows)


def by_app_and_category(rows: list[UsageRow]) -> dict[tuple[str, Category], int]:
    """Quantities per (app, category), the invoice's line items."""
    totals: dict[tuple[str, Category], int] = defaultdict(int)
    for row in rows:
        totals[(row.client_id, row.category)] += row.quantity
    return dict(totals)
