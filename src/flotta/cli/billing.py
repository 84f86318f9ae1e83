"""`flotta billing`: estimate a month's spend with the configured price book."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from flotta.billing.prices import cents_text
from flotta.settings import BillingSettings

billing_app = typer.Typer(help="Billing: estimate your spend, close a month.", no_args_is_help=True)
console = Console()
errors = Console(stderr=True)

# CLI option names of the request's members, so errors name what the user typed.
OPTIONS = {
    "vehicles": "--vehicles",
    "fields": "--field",
    "commands_per_day": "--commands-per-day",
    "data_per_day": "--data-per-day",
    "wakes_per_day": "--wakes-per-day",
    "days": "--days",
    "month": "--month",
}


class _BillingEnv(BaseSettings):
    """Only FLOTTA_BILLING__*: an estimate needs the price book, not a database or secret."""

    model_config = SettingsConfigDict(
        env_prefix="FLOTTA_", env_nested_delimiter="__", extra="ignore"
    )

    billing: BillingSettings = BillingSettings()


def _fail(message: str) -> typer.Exit:
    errors.print(f"[red]error:[/red] {escape(message)}", soft_wrap=True, highlight=False)
    return typer.Exit(2)


def _field(spec: str) -> dict[str, str]:
    parts = spec.split(":")
    if len(parts) not in (2, 3) or not all(parts):
        raise _fail(f"--field {spec!r}: write Name:interval[:share], e.g. Location:60:0.1")
    share = parts[2] if len(parts) == 3 else "1"
    return {"name": parts[0], "interval_seconds": parts[1], "active_share": share}


def _where(loc: tuple[int | str, ...], specs: list[str]) -> str:
    option = OPTIONS.get(str(loc[0]), str(loc[0])) if loc else "input"
    if loc and loc[0] == "fields" and len(loc) > 1 and isinstance(loc[1], int):
        return f"--field {specs[loc[1]]!r}" + (f" ({loc[2]})" if len(loc) > 2 else "")
    return option


def _request(payload: dict[str, Any], specs: list[str]) -> Any:
    from flotta.billing.schemas import EstimateRequest
    from flotta.validation import validation_message

    try:
        return EstimateRequest.model_validate(payload)
    except ValidationError as invalid:
        problems = [f"{_where(p['loc'], specs)}: {validation_message(p)}" for p in invalid.errors()]
        raise _fail("; ".join(problems)) from invalid


def _table(result: Any) -> Table:
    table = Table(title=f"{result.vehicles} vehicle(s), {result.days} days", title_justify="left")
    for column in ("Category", "Quantity", "Price", f"Cost ({result.currency})"):
        table.add_column(column, justify="left" if column == "Category" else "right")
    for line in result.categories:
        price = f"{line.units_per_currency_unit:,} per {result.currency} 1"
        table.add_row(line.category, f"{line.quantity:,}", price, line.cost)
    table.add_section()
    table.add_row("subtotal", "", "", result.subtotal)
    table.add_row("credit applied", "", f"of {result.monthly_credit}", f"-{result.credit_applied}")
    table.add_row("total after credit", "", "", result.total)
    return table


@billing_app.command()
def estimate(
    vehicles: Annotated[int, typer.Option(help="Number of vehicles")],
    field: Annotated[
        list[str] | None,
        typer.Option(help="Streamed field Name:interval_seconds[:share of the day], repeatable"),
    ] = None,
    commands_per_day: Annotated[int, typer.Option(help="Commands per vehicle per day")] = 0,
    data_per_day: Annotated[int, typer.Option(help="Data requests per vehicle per day")] = 0,
    wakes_per_day: Annotated[int, typer.Option(help="Wakes per vehicle per day")] = 0,
    days: Annotated[int | None, typer.Option(help="Days billed (default 30)")] = None,
    month: Annotated[str | None, typer.Option(help="YYYY-MM: use its real length")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the API's JSON")] = False,
) -> None:
    """Estimate a month's cost per category, before and after the monthly credit."""
    from flotta.billing.estimator import estimate as estimate_spend
    from flotta.billing.estimator import to_result
    from flotta.billing.prices import PriceBook

    specs = list(field or [])
    payload: dict[str, Any] = {
        "vehicles": vehicles,
        "fields": [_field(spec) for spec in specs],
        "commands_per_day": commands_per_day,
        "data_per_day": data_per_day,
        "wakes_per_day": wakes_per_day,
        "days": days,
        "month": month,
    }
    request = _request(payload, specs)
    try:
        book = PriceBook.from_settings(_BillingEnv().billing)
    except ValidationError as invalid:
        raise _fail(f"configuration error: {invalid}") from invalid
    result = to_result(estimate_spend(book, request))
    if as_json:
        print(json.dumps(result.model_dump(mode="json"), indent=2))
        return
    console.print(_table(result))
    for note in [result.rounding, *result.notes]:
        console.print(note, markup=False, highlight=False, soft_wrap=True)


@billing_app.command()
def close(
    month: Annotated[str, typer.Option(help="The month to close, YYYY-MM (it must be over)")],
    data_dir: Annotated[
        Path, typer.Option("--data-dir", help="Where SQLite, keys and demo.json live")
    ] = Path("data"),
) -> None:
    """Write the month's invoices (from 00:05 UTC on the 1st of the next month). Closing a month
    again changes nothing."""
    import asyncio

    from flotta.billing.invoices import MonthNotOver, close_month
    from flotta.billing.prices import PriceBook
    from flotta.billing.schemas import parse_month
    from flotta.cli.admin import settings_for
    from flotta.clock import SystemClock
    from flotta.db.migrate import migrated

    try:
        month = parse_month(month)
    except ValueError as invalid:
        raise _fail(str(invalid)) from invalid
    settings = settings_for(data_dir)
    book = PriceBook.from_settings(settings.billing)

    async def main() -> Any:
        async with migrated(settings.database_url) as sessions:
            return await close_month(sessions, book, month, SystemClock().now())

    try:
        closing = asyncio.run(main())
    except MonthNotOver as early:
        raise _fail(str(early)) from early
    table = Table(title=f"Invoices for {month}", title_justify="left")
    for column in ("Account", "Subtotal", "Credit", f"Total ({book.currency})", ""):
        table.add_column(column, justify="left" if column == "Account" else "right")
    for invoice, state in [(i, "closed now") for i in closing.created] + [
        (i, "already closed") for i in closing.existing
    ]:
        table.add_row(
            str(invoice.account_id),
            cents_text(invoice.subtotal),
            cents_text(invoice.credit_applied),
            invoice.total,
            state,
        )
    console.print(table)
    console.print(
        f"{len(closing.created)} invoice(s) written, {len(closing.existing)} already closed",
        markup=False,
        highlight=False,
    )
