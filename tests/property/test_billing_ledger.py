"""Property tests of the billing ledger on a real, migrated SQLite file.

Totals equal the sum of the events however they are batched, ordered or repeated; an invoice
is rounded once; the monthly credit is applied once; a month boundary splits usage exactly.
"""

from __future__ import annotations

import asyncio
import itertools
import shutil
import tempfile
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import TypeVar

import pytest
from hypothesis import example, find, given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from tests.billing.test_ledger import open_db, sqlite_url

from flotta.billing.categories import Category
from flotta.billing.invoices import CLOSE_AFTER, close_month, draft, price
from flotta.billing.ledger import Ledger, UsageEvent, write_events
from flotta.billing.meter import Meter
from flotta.billing.models import InvoiceRow, UsageDaily, UsageEventRow
from flotta.billing.prices import PriceBook, cents_text, round_to_cent
from flotta.billing.queries import month_quantities
from flotta.clock import ManualClock
from flotta.db.engine import make_engine, make_sessionmaker
from flotta.settings import BillingSettings, Settings

T = TypeVar("T")
ACCOUNTS = (1, 2, 3)
APPS = ("app-a", "app-b")
DEVICES = ("", "vehicle:5YJ3E1EB0TF000001", "site:2252178000000001")
CATEGORIES = tuple(Category)
# Seed prices (reference §8): units per €1.
UNITS = {
    Category.STREAMING: 150_000,
    Category.COMMANDS: 1_000,
    Category.DATA: 500,
    Category.WAKES: 50,
}
BOUNDARY = datetime(2026, 2, 1, tzinfo=UTC)
CLOSED_AT = datetime(2026, 4, 1, tzinfo=UTC) + CLOSE_AFTER
FEW = settings(max_examples=40, deadline=None, database=None)
DB_FEW = settings(max_examples=30, deadline=None, database=None)

Work = Callable[[async_sessionmaker[AsyncSession]], Awaitable[T]]


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated database with three accounts; each example works on its own copy."""
    path = tmp_path_factory.mktemp("ledger") / "template.db"

    async def build() -> None:
        db = await open_db(path, accounts=len(ACCOUNTS))
        assert tuple(db.accounts) == ACCOUNTS
        await db.engine.dispose()

    asyncio.run(build())
    return path


def on_copy(template: Path, work: Work[T]) -> T:
    """Run `work` against a fresh copy of the template database."""
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "ledger.db"
        shutil.copyfile(template, path)

        async def run() -> T:
            engine = make_engine(sqlite_url(path))
            try:
                return await work(make_sessionmaker(engine))
            finally:
                await engine.dispose()

        return asyncio.run(run())


def book(credit: str = "10.00") -> PriceBook:
    return PriceBook.from_settings(BillingSettings(monthly_credit=Decimal(credit)))


events_st = st.lists(
    st.tuples(
        st.sampled_from(ACCOUNTS),
        st.sampled_from(APPS),
        st.sampled_from(DEVICES),
        st.sampled_from(CATEGORIES),
        st.integers(1, 1_000_000),
        # Within three days either side of 1 February 00:00 UTC, to the microsecond.
        st.integers(-3 * 86_400_000_000, 3 * 86_400_000_000),
    ),
    min_size=1,
    max_size=30,
).map(
    lambda specs: [
        UsageEvent(f"e{i}", a, app, dev, cat, q, BOUNDARY + timedelta(microseconds=us))
        for i, (a, app, dev, cat, q, us) in enumerate(specs)
    ]
)


def deliveries(data: st.DataObject, events: list[UsageEvent]) -> list[list[UsageEvent]]:
    """Every event at least once, some again, in any order, cut into random batches."""
    again = data.draw(st.lists(st.sampled_from(events), max_size=len(events)), label="again")
    order = data.draw(st.permutations([*events, *again]), label="order")
    cuts = sorted(data.draw(st.sets(st.integers(1, max(1, len(order) - 1))), label="cuts"))
    bounds = [0, *[c for c in cuts if c < len(order)], len(order)]
    return [order[a:b] for a, b in itertools.pairwise(bounds) if a < b]


def expected_daily(events: list[UsageEvent]) -> Counter[tuple[int, str, str, str, date]]:
    totals: Counter[tuple[int, str, str, str, date]] = Counter()
    for e in events:
        totals[(e.account_id, e.client_id, e.device, e.category.value, e.occurred_at.date())] += (
            e.quantity
        )
    return totals


def expected_month(events: list[UsageEvent], account: int, month: str) -> dict[Category, int]:
    totals: Counter[Category] = Counter()
    for e in events:
        if e.account_id == account and f"{e.occurred_at:%Y-%m}" == month:
            totals[e.category] += e.quantity
    return dict(totals)


@DB_FEW
@given(events=events_st, data=st.data(), through_ledger=st.booleans())
def test_totals_equal_the_events_under_any_interleaving(
    template: Path, events: list[UsageEvent], data: st.DataObject, through_ledger: bool
) -> None:
    batches = deliveries(data, events)

    async def work(sessions: async_sessionmaker[AsyncSession]) -> None:
        if through_ledger:  # concurrent callers: batches merge into shared transactions
            ledger = Ledger(sessions)
            await ledger.start()
            await asyncio.gather(*(ledger.record_many(b) for b in batches))
            await ledger.stop()
        else:  # one transaction per batch, e.g. a retried commit whose outcome was unknown
            for batch in batches:
                async with sessions() as db, db.begin():
                    await write_events(db, batch)
        async with sessions() as db:
            keys = (await db.scalars(select(UsageEventRow.key))).all()
            daily = (await db.scalars(select(UsageDaily))).all()
            months = {
                (a, m): await month_quantities(db, a, m)
                for a in ACCOUNTS
                for m in ("2026-01", "2026-02")
            }
        assert sorted(keys) == sorted(e.key for e in events)
        got = {(d.account_id, d.client_id, d.device, d.category, d.day): d.quantity for d in daily}
        assert got == dict(expected_daily(events))
        for (account, month), quantities in months.items():
            assert quantities == expected_month(events, account, month)

    on_copy(template, work)


usage_st = st.dictionaries(
    st.tuples(st.sampled_from(APPS), st.sampled_from(CATEGORIES)),
    st.integers(0, 300_000),
    max_size=8,
)


@FEW
@given(usage=usage_st, credit_cents=st.integers(0, 3_000))
def test_the_invoice_is_rounded_once_after_the_credit(
    usage: dict[tuple[str, Category], int], credit_cents: int
) -> None:
    prices = book(str(Decimal(credit_cents).scaleb(-2)))
    invoice = price(prices, 1, "2026-01", usage, {})
    exact = sum((Fraction(q, UNITS[c]) for (_, c), q in usage.items()), Fraction(0))
    credit = min(Fraction(credit_cents, 100), exact)
    assert [line.amount for line in invoice.lines] == [
        Fraction(line.quantity, UNITS[line.category]) for line in invoice.lines
    ]
    assert sum((line.amount for line in invoice.lines), Fraction(0)) == exact
    assert (invoice.subtotal, invoice.credit_applied) == (exact, credit)
    assert invoice.total == cents_text(exact - credit)


def test_rounding_each_line_instead_would_change_some_totals() -> None:
    prices = book("0.00")

    def per_line_differs(usage: dict[tuple[str, Category], int]) -> bool:
        invoice = price(prices, 1, "2026-01", usage, {})
        per_line = sum((round_to_cent(line.amount) for line in invoice.lines), Decimal(0))
        return Decimal(invoice.total) != per_line

    found = find(usage_st, per_line_differs, settings=settings(max_examples=500, database=None))
    invoice = price(prices, 1, "2026-01", found, {})
    assert invoice.total == cents_text(sum((line.amount for line in invoice.lines), Fraction(0)))
    # By hand: three apps' 3 data requests each are €0.006 apiece; rounded once €0.018 is
    # €0.02, rounded per line it would be €0.03.
    by_hand = {(app, Category.DATA): 3 for app in ("a", "b", "c")}
    assert price(prices, 1, "2026-01", by_hand, {}).total == "0.02"


@DB_FEW
@given(events=events_st, credit_cents=st.integers(0, 2_000))
def test_the_credit_is_applied_once_however_often_a_month_is_priced(
    template: Path, events: list[UsageEvent], credit_cents: int
) -> None:
    prices = book(str(Decimal(credit_cents).scaleb(-2)))
    credit = Fraction(credit_cents, 100)

    async def work(sessions: async_sessionmaker[AsyncSession]) -> None:
        async with sessions() as db, db.begin():
            await write_events(db, events)
        async with sessions() as db:
            drafts = [await draft(db, prices, a, "2026-01") for a in ACCOUNTS]
        first = await close_month(sessions, prices, "2026-01", CLOSED_AT)
        # The same usage written again and the month closed again: nothing changes.
        async with sessions() as db, db.begin():
            assert await write_events(db, events) == []
        again = await close_month(sessions, prices, "2026-01", CLOSED_AT + timedelta(days=3))
        async with sessions() as db:
            rows = (await db.scalars(select(InvoiceRow).order_by(InvoiceRow.account_id))).all()
            redrafts = [await draft(db, prices, a, "2026-01") for a in ACCOUNTS]
        assert again.created == [] and len(again.existing) == len(first.created) == len(rows)
        assert redrafts == drafts
        for row in rows:
            used = expected_month(events, row.account_id, "2026-01")
            subtotal = sum((Fraction(q, UNITS[c]) for c, q in used.items()), Fraction(0))
            applied = min(credit, subtotal)
            assert Fraction(row.credit_applied) == applied
            assert row.total == cents_text(subtotal - applied)
            assert Decimal(row.total) >= 0
            assert row.closed_at == CLOSED_AT

    on_copy(template, work)


boundaries = st.sampled_from(
    [
        datetime(2026, 1, 1, tzinfo=UTC),  # a new year
        datetime(2026, 3, 1, tzinfo=UTC),  # after a 28-day February
        datetime(2028, 3, 1, tzinfo=UTC),  # after a leap day
        datetime(2026, 5, 1, tzinfo=UTC),  # after a 30-day month
    ]
)
steps_st = st.lists(
    st.tuples(st.integers(0, 900), st.sampled_from(CATEGORIES), st.integers(1, 50)),
    min_size=1,
    max_size=20,
)


@DB_FEW
@given(boundary=boundaries, lead_s=st.integers(0, 3_600), steps=steps_st)
@example(boundary=datetime(2026, 3, 1, tzinfo=UTC), lead_s=1, steps=[(0, Category.DATA, 1)] * 3)
@example(boundary=datetime(2026, 1, 1, tzinfo=UTC), lead_s=5, steps=[(5, Category.WAKES, 2)])
def test_a_month_boundary_splits_usage_at_midnight_utc(
    template: Path, boundary: datetime, lead_s: int, steps: list[tuple[int, Category, int]]
) -> None:
    before = f"{boundary - timedelta(days=1):%Y-%m}"
    after = f"{boundary:%Y-%m}"

    async def work(sessions: async_sessionmaker[AsyncSession]) -> None:
        # Stamped as the middleware stamps them: with the injected clock's time of the request.
        clock = ManualClock(start=boundary - timedelta(seconds=lead_s))
        with tempfile.TemporaryDirectory() as data_dir:
            meter = Meter(Settings(demo=True, data_dir=Path(data_dir)), sessions, clock)
            await meter.start()
            stamped: list[UsageEvent] = []
            for i, (advance_s, category, quantity) in enumerate(steps):
                clock.advance(advance_s)
                await meter.month(1)  # as the middleware asks before each request
                event = UsageEvent(f"m{i}", 1, "app-a", "", category, quantity, clock.now())
                meter.record(event)
                stamped.append(event)
            await meter.ledger.flushed()
            current = await meter.month(1)
            await meter.stop()
        old = Counter[Category]()
        new = Counter[Category]()
        for event in stamped:
            (new if event.occurred_at >= boundary else old)[event.category] += event.quantity
        async with sessions() as db:
            assert await month_quantities(db, 1, before) == dict(old)
            assert await month_quantities(db, 1, after) == dict(new)
        # The meter's running month is the clock's month, and holds only that month's usage.
        now_month = after if clock.now() >= boundary else before
        assert current.month == now_month
        assert current.quantities() == dict(new if now_month == after else old)

    on_copy(template, work)
