"""Closing a month: invoices priced by hand, written once, never before the month is over."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from flotta.billing.categories import Category
from flotta.billing.invoices import (
    CLOSE_AFTER,
    MonthNotOver,
    close_month,
    invoice_for,
)
from flotta.billing.ledger import UsageEvent, write_events
from flotta.billing.models import InvoiceRow
from flotta.billing.prices import PriceBook
from flotta.billing.schemas import parse_month
from flotta.oauth.models import OAuthClient
from flotta.settings import BillingSettings
from tests.billing.test_ledger import CREATED, Db, open_db

BOOK = PriceBook.from_settings(BillingSettings())
NOVEMBER = datetime(2026, 11, 1, tzinfo=UTC)
DECEMBER = datetime(2026, 12, 1, tzinfo=UTC)
CLOSING = DECEMBER + CLOSE_AFTER  # the earliest a close of November is accepted
Row = tuple[int, int, str, str, list[dict[str, object]], str, str, str, datetime]


async def add_app(sessions: async_sessionmaker[AsyncSession], owner: int, client: str) -> None:
    async with sessions() as db, db.begin():
        db.add(
            OAuthClient(
                client_id=client,
                name=f"{client.title()} App",
                owner_id=owner,
                client_type="confidential",
                created_at=CREATED,
            )
        )


def used(
    key: str, account: int, client: str, category: Category, n: int, at: datetime
) -> UsageEvent:
    return UsageEvent(key, account, client, "vehicle:5YJ3E1EB0TF000001", category, n, at)


@pytest.fixture
async def november(tmp_path: Path) -> AsyncIterator[Db]:
    """Three accounts' November usage, plus usage just outside November."""
    store = await open_db(tmp_path / "invoices.db")
    one, two, three = store.accounts
    await add_app(store.sessions, one, "alpha")
    await add_app(store.sessions, one, "beta")
    late = DECEMBER - timedelta(microseconds=1)
    events = [
        # Account one: 12,345 commands (€12.345), 7 data (€0.014), 3 wakes (€0.06) on two apps.
        used("a1", one, "alpha", Category.COMMANDS, 12_000, NOVEMBER),
        used("a2", one, "alpha", Category.COMMANDS, 345, late),
        used("a3", one, "beta", Category.DATA, 7, NOVEMBER + timedelta(days=3)),
        used("a4", one, "alpha", Category.WAKES, 3, NOVEMBER + timedelta(days=9)),
        # Outside November on either side: on no November invoice.
        used("a5", one, "alpha", Category.COMMANDS, 999, NOVEMBER - timedelta(microseconds=1)),
        used("a6", one, "alpha", Category.COMMANDS, 999, DECEMBER),
        # Account two: 10,005 commands = €10.005; after the €10 credit €0.005 rounds up.
        used("b1", two, "gamma", Category.COMMANDS, 10_005, NOVEMBER + timedelta(days=1)),
        # Account three: one streamed signal (€1/150,000), all covered by the credit.
        used("c1", three, "delta", Category.STREAMING, 1, NOVEMBER + timedelta(days=2)),
    ]
    async with store.sessions() as db, db.begin():
        await write_events(db, events)
    try:
        yield store
    finally:
        await store.engine.dispose()


async def rows(sessions: async_sessionmaker[AsyncSession]) -> list[Row]:
    async with sessions() as db:
        found = (await db.scalars(select(InvoiceRow).order_by(InvoiceRow.account_id))).all()
    return [
        (
            r.id,
            r.account_id,
            r.month,
            r.currency,
            r.lines,
            r.subtotal,
            r.credit_applied,
            r.total,
            r.closed_at,
        )
        for r in found
    ]


async def test_close_writes_invoices_matching_hand_computed_amounts(november: Db) -> None:
    one, two, three = november.accounts
    closing = await close_month(november.sessions, BOOK, "2026-11", CLOSING)
    assert [i.account_id for i in closing.created] == [one, two, three]
    assert closing.existing == []
    written = {r[1]: r for r in await rows(november.sessions)}
    assert written[one][4] == [
        {
            "category": "commands",
            "client_id": "alpha",
            "app": "Alpha App",
            "quantity": 12_345,
            "units_per_currency_unit": 1_000,
            "amount": "12.345",
        },
        {
            "category": "data",
            "client_id": "beta",
            "app": "Beta App",
            "quantity": 7,
            "units_per_currency_unit": 500,
            "amount": "0.014",
        },
        {
            "category": "wakes",
            "client_id": "alpha",
            "app": "Alpha App",
            "quantity": 3,
            "units_per_currency_unit": 50,
            "amount": "0.06",
        },
    ]
    # (month, currency, subtotal, credit applied, total): rounded once, on the total.
    assert written[one][2:4] + written[one][5:8] == ("2026-11", "EUR", "12.419", "10.00", "2.42")
    assert written[two][5:8] == ("10.005", "10.00", "0.01")
    assert written[three][4][0]["app"] == "delta"  # an app the ledger knows only by its id
    assert written[three][5:8] == ("1/150000", "1/150000", "0.00")
    assert {r[8] for r in written.values()} == {CLOSING}


async def test_closing_twice_changes_nothing(november: Db) -> None:
    first = await close_month(november.sessions, BOOK, "2026-11", CLOSING)
    before = await rows(november.sessions)
    # Usage that reaches the ledger late does not reopen a closed invoice either.
    async with november.sessions() as db, db.begin():
        late = used("late", november.accounts[0], "alpha", Category.DATA, 500, NOVEMBER)
        assert await write_events(db, [late]) == [late]
    again = await close_month(november.sessions, BOOK, "2026-11", CLOSING + timedelta(days=9))
    assert again.created == []
    assert again.existing == first.created
    assert await rows(november.sessions) == before
    async with november.sessions() as db:
        shown = await invoice_for(db, BOOK, november.accounts[0], "2026-11")
    assert (shown.total, shown.closed_at) == ("2.42", CLOSING)


async def test_a_month_not_over_is_refused(november: Db) -> None:
    """Nor a month that ended less than CLOSE_AFTER ago: requests admitted in it may still be
    running."""
    too_early = (
        DECEMBER + CLOSE_AFTER - timedelta(microseconds=1),
        DECEMBER - timedelta(microseconds=1),
        NOVEMBER + timedelta(days=15),
    )
    for now in too_early:
        with pytest.raises(
            MonthNotOver,
            match=r"2026-11 is not over until 2026-12-01 00:00 UTC, and can be closed from 00:05",
        ):
            await close_month(november.sessions, BOOK, "2026-11", now)
    assert await rows(november.sessions) == []
    # The open month's invoice is a draft: priced the same way, not closed.
    async with november.sessions() as db:
        current = await invoice_for(db, BOOK, november.accounts[0], "2026-11")
    assert (current.subtotal, current.credit_applied) == (Fraction("12.419"), Fraction(10))
    assert (current.total, current.closed_at) == ("2.42", None)


async def test_a_month_with_no_usage_writes_no_invoice(november: Db) -> None:
    closing = await close_month(november.sessions, BOOK, "2026-09", CLOSING)
    assert (closing.created, closing.existing) == ([], [])
    assert await rows(november.sessions) == []


def test_month_must_be_a_real_yyyy_mm() -> None:
    assert parse_month("2026-02") == "2026-02"
    for bad in ("2026-13", "2026-00", "2026-1", "26-01", "2026-01-05", "November"):
        with pytest.raises(ValueError, match="month must be YYYY-MM"):
            parse_month(bad)
