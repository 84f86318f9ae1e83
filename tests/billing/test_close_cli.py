"""`flotta billing close --month`: the operator closes a month on a prepared data directory."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner, Result

from flotta.billing.categories import Category
from flotta.billing.ledger import UsageEvent, write_events
from flotta.billing.models import InvoiceRow
from flotta.cli.main import app
from flotta.clock import SystemClock
from tests.billing.test_ledger import open_db

JUNE = datetime(2025, 6, 1, tzinfo=UTC)
# Outside `flotta demo` the settings refuse the public demo secret; the database is the data
# directory's SQLite file whatever the environment says.
ENV = {"FLOTTA_SECRET_KEY": "billing-close-test-secret-0123456789", "FLOTTA_DB__URL": ""}


async def _prepare(data_dir: Path) -> None:
    """June 2025 usage for two accounts, and some usage this month for the first."""
    store = await open_db(data_dir / "flotta.db", accounts=2)
    one, two = store.accounts
    now = SystemClock().now()
    events = [
        UsageEvent("j1", one, "app", "", Category.COMMANDS, 12_345, JUNE + timedelta(days=2)),
        UsageEvent("j2", two, "app", "", Category.WAKES, 25, JUNE + timedelta(days=29)),
        UsageEvent("now", one, "app", "", Category.DATA, 9, now),
    ]
    async with store.sessions() as db, db.begin():
        await write_events(db, events)
    await store.engine.dispose()


async def _invoices(data_dir: Path) -> list[tuple[int, str, str, datetime]]:
    store = await open_db(data_dir / "flotta.db", accounts=0)
    try:
        async with store.sessions() as db:
            rows = (await db.scalars(select(InvoiceRow).order_by(InvoiceRow.account_id))).all()
        return [(r.account_id, r.month, r.total, r.closed_at) for r in rows]
    finally:
        await store.engine.dispose()


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    asyncio.run(_prepare(tmp_path))
    return tmp_path


def close(data_dir: Path, month: str) -> Result:
    runner = CliRunner(env={**ENV, "COLUMNS": "120"})
    return runner.invoke(app, ["billing", "close", "--month", month, "--data-dir", str(data_dir)])


def table_rows(output: str) -> dict[str, list[str]]:
    """The table's body rows by account id, cells stripped."""
    rows: dict[str, list[str]] = {}
    for line in output.splitlines():
        cells = [cell.strip() for cell in line.split("│")[1:-1]]
        if cells and cells[0].isdigit():
            rows[cells[0]] = cells[1:]
    return rows


def test_close_prints_the_invoices_and_a_second_close_changes_nothing(data_dir: Path) -> None:
    first = close(data_dir, "2025-06")
    assert first.exit_code == 0, first.output
    assert "Invoices for 2025-06" in first.stdout
    # Account 1: 12,345 commands = 12.345, minus the credit = 2.345 → 2.35 (half up, once).
    # Account 2: 25 wakes = 0.50, all covered by the credit.
    assert table_rows(first.stdout) == {
        "1": ["12.35", "10.00", "2.35", "closed now"],
        "2": ["0.50", "0.50", "0.00", "closed now"],
    }
    assert "2 invoice(s) written, 0 already closed" in first.stdout
    written = asyncio.run(_invoices(data_dir))
    assert [(a, m, t) for a, m, t, _ in written] == [(1, "2025-06", "2.35"), (2, "2025-06", "0.00")]

    second = close(data_dir, "2025-06")
    assert second.exit_code == 0, second.output
    assert table_rows(second.stdout) == {
        "1": ["12.35", "10.00", "2.35", "already closed"],
        "2": ["0.50", "0.50", "0.00", "already closed"],
    }
    assert "0 invoice(s) written, 2 already closed" in second.stdout
    assert asyncio.run(_invoices(data_dir)) == written  # same rows, same closed_at


def test_an_impossible_month_is_a_clear_error(data_dir: Path) -> None:
    for bad in ("2026-13", "2026-1", "June"):
        result = close(data_dir, bad)
        assert result.exit_code == 2
        assert f"month must be YYYY-MM, e.g. 2026-11 (got '{bad}')" in result.stderr
        assert "Traceback" not in result.output
    last = close(data_dir, "9999-12")  # its cycle would end in the year 10000
    assert last.exit_code == 2 and "Traceback" not in last.output
    assert "month must be 9999-11 at the latest" in last.stderr
    assert asyncio.run(_invoices(data_dir)) == []


def test_a_mistyped_data_directory_is_named_as_the_problem(tmp_path: Path) -> None:
    missing = tmp_path / "dta"
    # With the server's secret set, and without it (Settings then misses the secret too).
    for secret in (ENV["FLOTTA_SECRET_KEY"], None):
        runner = CliRunner(env={**ENV, "FLOTTA_SECRET_KEY": secret, "COLUMNS": "120"})
        result = runner.invoke(
            app, ["billing", "close", "--month", "2025-06", "--data-dir", str(missing)]
        )
        assert result.exit_code == 2
        assert result.stderr.strip() == (
            f"error: no data directory at {missing}: give --data-dir the directory "
            "`flotta demo` or `flotta serve` keeps its data in"
        )
        assert not missing.exists()  # no empty database was made there
    a_file = tmp_path / "flotta.db"
    a_file.write_bytes(b"")
    result = runner.invoke(
        app, ["billing", "close", "--month", "2025-06", "--data-dir", str(a_file)]
    )
    assert result.exit_code == 2
    assert f"--data-dir {a_file} is a file, not a data directory" in result.stderr


def test_a_month_not_over_is_refused(data_dir: Path) -> None:
    now = SystemClock().now()
    month = f"{now:%Y-%m}"
    result = close(data_dir, month)
    assert result.exit_code == 2
    assert f"{month} is not over until" in result.stderr
    assert "00:00 UTC" in result.stderr
    assert asyncio.run(_invoices(data_dir)) == []
