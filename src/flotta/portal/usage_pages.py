"""The developer's billing pages: usage with charts, invoices, and billing settings.

`/portal/billing` breaks a month's ledger down per category, day, app and device;
`/portal/billing/invoices[/{YYYY-MM}]` shows the drafts and closed invoices; and
`/portal/billing/settings` holds the (simulated) card, the threshold and per-app budgets.
Every page reads only the signed-in account's own rows.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from fastapi import APIRouter, Request
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import FormData
from starlette.responses import Response

from flotta.apps.repository import AppRepository
from flotta.billing import accounts
from flotta.billing.invoices import (
    Invoice,
    app_names,
    closed_months,
    draft,
    invoice_for,
)
from flotta.billing.invoices import price as price_invoice
from flotta.billing.models import InvoiceRow, UsageDaily
from flotta.billing.prices import (
    CATEGORY_ORDER,
    UNIT_NAMES,
    PriceBook,
    cents_text,
    exact_text,
    floor_text,
)
from flotta.billing.queries import by_app_and_category, month_of, month_rows
from flotta.billing.schemas import parse_month
from flotta.portal.charts import Bar, bar_chart, chart_of, device_label, group_rows
from flotta.portal.web import PORTAL, read_form, redirect, render, require_account, runtime_of
from flotta.runtime import Runtime

router = APIRouter(include_in_schema=False)

USAGE = f"{PORTAL}/billing"
INVOICES = f"{PORTAL}/billing/invoices"
SETTINGS = f"{PORTAL}/billing/settings"
SYMBOLS = {"EUR": "€", "USD": "$", "GBP": "£"}
NOTICES = {
    "card": "Payment method saved.",
    "threshold": "Billing threshold saved; it applies to your next request.",
    "budget": "Budget saved.",
    "budget-cleared": "Budget removed.",
}


def money(book: PriceBook, amount: Fraction) -> str:
    """An amount rounded to the cent with its currency sign: "€100.00"."""
    sign = SYMBOLS.get(book.currency)
    return f"{sign}{cents_text(amount)}" if sign else f"{book.currency} {cents_text(amount)}"


async def usage_months(db: AsyncSession, account_id: int, current: str) -> list[str]:
    """The months worth choosing: the current one, and each with usage or an invoice."""
    days = await db.scalars(
        select(UsageDaily.day).where(UsageDaily.account_id == account_id).distinct()
    )
    invoiced = await db.scalars(select(InvoiceRow.month).where(InvoiceRow.account_id == account_id))
    months = {month_of(day) for day in days} | set(invoiced) | {current}
    return sorted(months, reverse=True)


def chosen_month(text: str | None, current: str) -> str | None:
    """The month asked for ("YYYY-MM", default the current one); None when unusable."""
    if not text:
        return current
    try:
        month = parse_month(text)
    except ValueError:
        return None
    return month if month <= current else None


def threshold_state(book: PriceBook, spent: Fraction, threshold: Fraction) -> dict[str, Any]:
    """How close the month's usage is to the threshold, and whether the account is disabled."""
    percent = 100 if threshold <= 0 else int(spent * 100 / threshold)
    return {
        "amount": money(book, threshold),
        "percent": percent,
        "exceeded": spent >= threshold,
        "text": f"{percent} % of your {money(book, threshold)} threshold",
    }


def summary_of(book: PriceBook, invoice: Invoice) -> dict[str, Any]:
    """Cost per category, the subtotal, credit used and left, and the total to pay."""
    categories = []
    for category in CATEGORY_ORDER:
        lines = [line for line in invoice.lines if line.category == category]
        cost = invoice.subtotal_for(category)
        categories.append(
            {
                "name": category.value,
                "unit": UNIT_NAMES[category],
                "quantity": sum(line.quantity for line in lines),
                "price": f"{book.units_per_currency_unit[category]:,} per {book.currency} 1",
                "cost": floor_text(cost),
                "value": cost,
            }
        )
    return {
        "categories": categories,
        "subtotal": floor_text(invoice.subtotal),
        "credit": money(book, book.monthly_credit),
        "credit_used": floor_text(invoice.credit_applied),
        "credit_left": floor_text(book.monthly_credit - invoice.credit_applied),
        "total": invoice.total,
    }


async def usage_context(
    db: AsyncSession, book: PriceBook, account_id: int, month: str
) -> dict[str, Any]:
    """Everything the usage page shows for one month of one account."""
    rows = await month_rows(db, account_id, month)
    usage = by_app_and_category(rows)
    names = await app_names(db, {client_id for client_id, _ in usage})
    invoice = price_invoice(book, account_id, month, usage, names)
    summary = summary_of(book, invoice)
    days = group_rows(book, rows, lambda r: r.day.isoformat(), lambda key: key)
    apps = group_rows(book, rows, lambda r: r.client_id, lambda key: names.get(key, key))
    devices = group_rows(book, rows, lambda r: r.device, device_label)
    category_bars = [
        Bar(c["name"], c["value"], f"{c['cost']} {book.currency}")
        for c in summary["categories"]
        if c["quantity"]
    ]
    return {
        "summary": summary,
        "days": days,
        "apps": apps,
        "devices": devices,
        "charts": {
            "categories": bar_chart(
                "chart-categories", f"Cost per category, {month}", category_bars
            ),
            "days": chart_of(book, "chart-days", f"Cost per day, {month}", days),
            "apps": chart_of(book, "chart-apps", f"Cost per app, {month}", apps),
            "devices": chart_of(
                book, "chart-devices", f"Cost per vehicle or site, {month}", devices
            ),
        },
        "subtotal": invoice.subtotal,
    }


async def committed_book(runtime: Runtime) -> PriceBook:
    """The price book, once this process's recorded usage is committed: the ledger gathers
    commits for up to a second, and a page must not show less than the headers did."""
    if runtime.meter is None:
        return PriceBook.from_settings(runtime.settings.billing)
    await runtime.meter.ledger.flushed()
    return runtime.meter.book


def not_found(request: Request, reason: str) -> Response:
    return render(request, "not_found.html", {"reason": reason}, status=404)


BAD_MONTH = "There is no billing month {!r}: write it as YYYY-MM, this month or an earlier one."


@router.get(USAGE)
async def usage_page(request: Request) -> Response:
    """A month's usage per category, day, app and device, as tables and charts."""
    runtime = runtime_of(request)
    book = await committed_book(runtime)
    current = month_of(runtime.clock.now().date())
    asked = request.query_params.get("month")
    async with runtime.sessions() as db, db.begin():
        found = await require_account(request, db)
        month = chosen_month(asked, current)
        if month is None:
            return not_found(request, BAD_MONTH.format(asked))
        account_id = found.user.id
        context = await usage_context(db, book, account_id, month)
        months = await usage_months(db, account_id, current)
        profile = await accounts.profile(db, book, account_id)
    context.update(
        month=month,
        months=months,
        current=month == current,
        this_month=current,
        currency=book.currency,
        units=[UNIT_NAMES[category] for category in CATEGORY_ORDER],
        category_names=[category.value for category in CATEGORY_ORDER],
        threshold=threshold_state(book, context["subtotal"], profile.threshold),
        budgets={cid: money(book, amount) for cid, amount in profile.budgets.items()},
    )
    return render(request, "usage.html", context)


@dataclass(frozen=True, slots=True)
class InvoiceSummary:
    month: str
    status: str
    subtotal: str
    total: str


@router.get(INVOICES)
async def invoices_page(request: Request) -> Response:
    """The current month's draft, months not closed yet, and every closed invoice."""
    runtime = runtime_of(request)
    book = await committed_book(runtime)
    current = month_of(runtime.clock.now().date())
    listed: list[InvoiceSummary] = []
    async with runtime.sessions() as db, db.begin():
        found = await require_account(request, db)
        account_id = found.user.id
        closed = {invoice.month: invoice for invoice in await closed_months(db, account_id)}
        for month in await usage_months(db, account_id, current):
            invoice = closed.get(month) or await draft(db, book, account_id, month)
            listed.append(_listed(invoice, current))
    return render(request, "invoices.html", {"invoices": listed, "currency": book.currency})


def _listed(invoice: Invoice, current: str) -> InvoiceSummary:
    if invoice.closed_at is not None:
        status = f"Closed on {invoice.closed_at.date().isoformat()}"
    elif invoice.month == current:
        status = "Draft (month in progress)"
    else:
        status = "Draft (month over, not closed yet)"
    return InvoiceSummary(invoice.month, status, cents_text(invoice.subtotal), invoice.total)


def _to_the_cent(amount: Fraction) -> dict[str, str | None]:
    """An invoice's subtotal or credit as docs/billing.md shows it: rounded once to the cent,
    with the exact amount beside it when rounding changed it."""
    cents = cents_text(amount)
    return {"cents": cents, "exact": None if Fraction(cents) == amount else exact_text(amount)}


def unit_price(units: int) -> str:
    """The exact price of one unit: a decimal when it has one ("0.002"), else "1/150,000"."""
    text = exact_text(Fraction(1, units))
    return f"1/{units:,}" if "/" in text else text


@router.get(INVOICES + "/{month}")
async def invoice_page(request: Request, month: str) -> Response:
    """One month's invoice (the draft while it is not closed), printable."""
    runtime = runtime_of(request)
    book = await committed_book(runtime)
    current = month_of(runtime.clock.now().date())
    async with runtime.sessions() as db, db.begin():
        found = await require_account(request, db)
        chosen = chosen_month(month, current)
        if chosen is None or chosen != month:
            return not_found(request, BAD_MONTH.format(month))
        invoice = await invoice_for(db, book, found.user.id, chosen)
    lines = [
        {
            "category": line.category.value,
            "app": line.app,
            "client_id": line.client_id,
            "quantity": line.quantity,
            "unit_price": unit_price(line.units_per_currency_unit),
            "amount": floor_text(line.amount),
            # Only when 6 decimals cut something off (a third of a cent, say).
            "exact": None
            if Fraction(floor_text(line.amount)) == line.amount
            else exact_text(line.amount),
        }
        for line in invoice.lines
    ]
    context = {
        "invoice": invoice,
        "lines": lines,
        "subtotal": _to_the_cent(invoice.subtotal),
        "credit_applied": _to_the_cent(invoice.credit_applied),
        "current": chosen == current,
        "account": found.user,
    }
    return render(request, "invoice.html", context)


async def settings_context(
    db: AsyncSession, book: PriceBook, account_id: int, month: str
) -> dict[str, Any]:
    """The card, the threshold and each app's budget next to what it spent this month."""
    profile = await accounts.profile(db, book, account_id)
    spent: dict[str, Fraction] = defaultdict(Fraction)
    for row in await month_rows(db, account_id, month):
        spent[row.client_id] += book.cost(row.category, row.quantity)
    apps = await AppRepository(db).of_owner(account_id)
    total = sum(spent.values(), Fraction(0))
    return {
        "profile": profile,
        "threshold": threshold_state(book, total, profile.threshold),
        "threshold_value": cents_text(profile.threshold),
        "default_threshold": money(book, book.threshold),
        "default_is_credit": book.threshold == book.monthly_credit,
        "currency": book.currency,
        "apps": [
            {
                "name": app.name,
                "client_id": app.client_id,
                "spent": floor_text(spent.get(app.client_id, Fraction(0))),
                "budget": cents_text(profile.budgets[app.client_id])
                if app.client_id in profile.budgets
                else "",
            }
            for app in apps
        ],
    }


async def settings_page_for(
    request: Request, *, error: str | None = None, status: int = 200
) -> Response:
    runtime = runtime_of(request)
    book = await committed_book(runtime)
    month = month_of(runtime.clock.now().date())
    async with runtime.sessions() as db, db.begin():
        found = await require_account(request, db)
        context = await settings_context(db, book, found.user.id, month)
    notice = None if error else NOTICES.get(request.query_params.get("notice", ""))
    return render(
        request, "billing_settings.html", {**context, "error": error, "notice": notice}, status
    )


@router.get(SETTINGS)
async def settings_page(request: Request) -> Response:
    return await settings_page_for(request)


def _text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


def _sentence(message: str) -> str:
    return message[:1].upper() + message[1:] + ("" if message.endswith(".") else ".")


Change = Callable[[AsyncSession, Runtime, int, FormData], Awaitable[str]]


async def _apply(request: Request, change: Change) -> Response:
    """Apply a settings form in one transaction; a refusal rolls it back and shows why."""
    runtime = runtime_of(request)
    try:
        async with runtime.sessions() as db, db.begin():
            found = await require_account(request, db)
            form = await read_form(request)
            notice = await change(db, runtime, found.user.id, form)
    except accounts.BillingSettingsError as refused:
        return await settings_page_for(request, error=_sentence(str(refused)), status=400)
    if runtime.meter is not None:
        runtime.meter.forget(found.user.id)  # the middleware's cached month: apply it now
    return redirect(f"{SETTINGS}?notice={notice}")


async def _card(db: AsyncSession, runtime: Runtime, account_id: int, form: FormData) -> str:
    now = runtime.clock.now()
    await accounts.add_card(db, account_id, _text(form, "card_number"), _text(form, "expiry"), now)
    return "card"


async def _threshold(db: AsyncSession, runtime: Runtime, account_id: int, form: FormData) -> str:
    book = PriceBook.from_settings(runtime.settings.billing)
    await accounts.set_threshold(db, book, account_id, _text(form, "threshold"))
    return "threshold"


async def _budget(db: AsyncSession, _: Runtime, account_id: int, form: FormData) -> str:
    amount = "" if _text(form, "clear") else _text(form, "budget")
    await accounts.set_budget(db, account_id, _text(form, "client_id"), amount)
    return "budget" if amount.strip() else "budget-cleared"


@router.post(SETTINGS + "/card")
async def add_card(request: Request) -> Response:
    """Keep a simulated card (brand, last four digits and expiry only)."""
    return await _apply(request, _card)


@router.post(SETTINGS + "/threshold")
async def set_threshold(request: Request) -> Response:
    """Set the excessive-bill threshold; above the default it needs a card."""
    return await _apply(request, _threshold)


@router.post(SETTINGS + "/budget")
async def set_budget(request: Request) -> Response:
    """Set or clear one app's monthly budget."""
    return await _apply(request, _budget)
