"""End to end: a known mix of requests through tesla-fleet-api 1.5.0, then the headers the
client received, the ledger and the invoice draft, each against amounts computed by hand.

The demo runs with a €0.02 monthly credit so the mix uses it up: the credit header must fall by
each request's exact price, stop at zero, and the invoice must apply the credit once and round
once. (The demo developer's seeded €100.00 threshold keeps the account enabled throughout.)
"""

from __future__ import annotations

import html
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from fractions import Fraction
from types import SimpleNamespace

import aiohttp
import pyotp
import pytest
from sqlalchemy import select
from tesla_fleet_api import TeslaFleetApi

from flotta.accounts.models import User
from flotta.billing.categories import Category
from flotta.billing.invoices import Invoice, draft
from flotta.billing.models import UsageDaily
from flotta.billing.queries import month_of, month_quantities
from tests.contract.support import IDLE_VIN_INDEX
from tests.live import LiveDemo
from tests.portal.account_support import Browser, sign_in

pytestmark = pytest.mark.contract

FLOTTA_PREFIX = "flotta-"


@dataclass(frozen=True)
class Seen:
    """One response as the client's aiohttp session received it."""

    method: str
    path: str
    headers: dict[str, str]


@dataclass(frozen=True)
class Expected:
    """What one request of the mix must say it was billed, worked out by hand."""

    path: str
    category: str
    cost: str
    credit_left: str


# Prices: data 500 per €1 (0.002), commands 1,000 per €1 (0.001), wakes 50 per €1 (0.02).
# The credit starts at 0.02 and is shown cut to 6 decimals; the wake overdraws it, so it stops
# at zero.
FREE_START = [
    Expected("/api/1/products", "free", "0", "0.020000"),
    Expected("/api/1/vehicles", "free", "0", "0.020000"),
    Expected("/api/1/vehicles/{vin}", "free", "0", "0.020000"),
]
DATA = [
    Expected("/api/1/vehicles/{vin}/vehicle_data", "data", "0.002", left)
    for left in ("0.018000", "0.016000", "0.014000", "0.012000", "0.010000")
]
COMMANDS = [
    Expected("/api/1/vehicles/{vin}/command/honk_horn", "commands", "0.001", "0.009000"),
    Expected("/api/1/vehicles/{vin}/command/flash_lights", "commands", "0.001", "0.008000"),
    Expected("/api/1/vehicles/{vin}/command/honk_horn", "commands", "0.001", "0.007000"),
]
WAKE_AND_FREE_END = [
    Expected("/api/1/vehicles/{vin}/wake_up", "wakes", "0.02", "0.000000"),
    Expected("/api/1/users/me", "free", "0", "0.000000"),
    Expected("/api/1/vehicles", "free", "0", "0.000000"),
]
MIX = FREE_START + DATA + COMMANDS + WAKE_AND_FREE_END
# 3 x 0.001 = 0.003; 5 x 0.002 = 0.010; 1 x 0.02 = 0.020. Subtotal 0.033, credit 0.02 applied,
# 0.013 left, rounded once to the cent: 0.01.
QUANTITIES = {Category.COMMANDS: 3, Category.DATA: 5, Category.WAKES: 1}
LINES = [
    (Category.COMMANDS, 3, 1000, Fraction(3, 1000)),
    (Category.DATA, 5, 500, Fraction(10, 1000)),
    (Category.WAKES, 1, 50, Fraction(20, 1000)),
]
SUBTOTAL = Fraction(33, 1000)
MONTHLY_CREDIT = Fraction(2, 100)
CREDIT_APPLIED = MONTHLY_CREDIT  # all of it: the subtotal is larger
TOTAL = "0.01"
# The dashboard's rows: category -> cost cut to 6 decimals; day, app and vehicle rows give the
# quantities of streaming, commands, data and wakes, then the cost.
DASHBOARD_COSTS = {"commands": "0.003000", "data": "0.010000", "wakes": "0.020000"}
BREAKDOWN = ["0", "3", "5", "1", "0.033000"]
APP_NAME = "Flotta Demo App"


@pytest.fixture
def demo(demo_factory: Callable[..., LiveDemo]) -> LiveDemo:
    return demo_factory(billing={"monthly_credit": "0.02"})


@pytest.fixture
def seen() -> list[Seen]:
    """Filled by the session's trace hook: the real headers of every response."""
    return []


@pytest.fixture
async def api(demo: LiveDemo, seen: list[Seen]) -> AsyncIterator[TeslaFleetApi]:
    async def on_request_end(
        _session: aiohttp.ClientSession,
        _context: SimpleNamespace,
        params: aiohttp.TraceRequestEndParams,
    ) -> None:
        headers = {
            k.lower(): v
            for k, v in params.response.headers.items()
            if k.lower().startswith(FLOTTA_PREFIX)
        }
        seen.append(Seen(params.method, params.url.path, headers))

    trace = aiohttp.TraceConfig()
    trace.on_request_end.append(on_request_end)
    timeout = aiohttp.ClientTimeout(total=20)
    async with aiohttp.ClientSession(timeout=timeout, trace_configs=[trace]) as session:
        yield TeslaFleetApi(session=session, access_token=demo.token, server=demo.base_url)


async def drive_the_mix(api: TeslaFleetApi, vin: str) -> None:
    """The calls of MIX, in its order, through the library's own methods."""
    vehicle = api.vehicles.createFleet(vin)
    await api.products()
    await vehicle.list()
    await vehicle.vehicle()
    for _ in DATA:
        assert (await vehicle.vehicle_data(["charge_state"]))["response"]["vin"] == vin
    for command in (vehicle.honk_horn, vehicle.flash_lights, vehicle.honk_horn):
        assert (await command())["response"]["result"] is True
    assert (await vehicle.wake_up())["response"]["vin"] == vin
    await api.user.me()
    await vehicle.list()


def developer_id(demo: LiveDemo) -> int:
    async def query() -> int:
        async with demo.handle.runtime.sessions() as db:
            email = demo.info["developer"]["email"]
            found = await db.scalar(select(User.id).where(User.email == email))
            assert found is not None
            return found

    return demo.call(query())


def ledger_and_invoice(
    demo: LiveDemo, account_id: int
) -> tuple[dict[Category, int], set[str], Invoice]:
    """The month's quantities, the devices billed and the invoice draft, from the server."""
    runtime = demo.handle.runtime
    assert runtime.meter is not None
    book = runtime.meter.book

    async def read() -> tuple[dict[Category, int], set[str], Invoice]:
        assert runtime.meter is not None
        await runtime.meter.ledger.flushed()  # the responses left once journaled; now committed
        month = month_of(runtime.clock.now().date())
        async with runtime.sessions() as db:
            quantities = await month_quantities(db, account_id, month)
            devices = set(
                await db.scalars(
                    select(UsageDaily.device).where(UsageDaily.account_id == account_id)
                )
            )
            return quantities, devices, await draft(db, book, account_id, month)

    return demo.call(read())


async def test_a_known_mix_is_billed_to_the_cent(
    api: TeslaFleetApi, demo: LiveDemo, seen: list[Seen]
) -> None:
    vin = demo.vins[IDLE_VIN_INDEX]
    await drive_the_mix(api, vin)

    assert [s.path for s in seen] == [e.path.format(vin=vin) for e in MIX]
    for got, want in zip(seen, MIX, strict=True):
        where = f"{got.method} {got.path}"
        assert got.headers["flotta-billing-category"] == want.category, where
        assert got.headers["flotta-billing-cost"] == want.cost, where
        assert got.headers["flotta-billing-currency"] == "EUR", where
        assert got.headers["flotta-credit-remaining"] == want.credit_left, where
        assert ("flotta-usage-id" in got.headers) == (want.category != "free"), where
    credit = MONTHLY_CREDIT  # it falls by each exact cost, and never below zero
    for got in seen:
        cost = Fraction(got.headers["flotta-billing-cost"])
        credit = max(Fraction(0), credit - cost)
        assert Fraction(got.headers["flotta-credit-remaining"]) == credit
    usage_ids = [s.headers["flotta-usage-id"] for s in seen if "flotta-usage-id" in s.headers]
    assert len(set(usage_ids)) == len(usage_ids) == 9

    quantities, devices, invoice = ledger_and_invoice(demo, developer_id(demo))
    assert quantities == QUANTITIES
    assert devices == {f"vehicle:{vin}"}
    client_id = demo.info["client_id"]
    assert [
        (ln.category, ln.client_id, ln.quantity, ln.units_per_currency_unit, ln.amount)
        for ln in invoice.lines
    ] == [(c, client_id, q, u, a) for c, q, u, a in LINES]
    assert invoice.currency == "EUR"
    assert invoice.subtotal == SUBTOTAL
    assert invoice.credit_applied == CREDIT_APPLIED
    assert invoice.total == TOTAL
    assert {line.app for line in invoice.lines} == {APP_NAME}
    today = demo.handle.runtime.clock.now().date().isoformat()
    check_dashboard(demo, vin, today)


def table_rows(page: str) -> dict[str, list[str]]:
    """Every table row of a page: its first cell's text -> the other cells' texts."""
    rows: dict[str, list[str]] = {}
    for row in re.findall(r"<tr[^>]*>(.*?)</tr>", page, re.S):
        cells = [
            " ".join(html.unescape(re.sub(r"<[^>]+>", " ", cell)).split())
            for cell in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row, re.S)
        ]
        if cells:
            rows[cells[0]] = cells[1:]
    return rows


def dashboard_rows(demo: LiveDemo) -> dict[str, list[str]]:
    """/portal/billing as the demo developer sees it (password, then a TOTP code)."""
    person = demo.info["developer"]
    with Browser(demo.base_url) as browser:
        step = sign_in(browser, person["email"], person["password"], next_url="/portal/billing")
        assert step.status_code == 303 and step.headers["location"].startswith("/portal/login/mfa")
        code = pyotp.TOTP(person["totp_secret"]).now()
        done = browser.submit(
            step.headers["location"], "/portal/login/mfa", code=code, next="/portal/billing"
        )
        assert done.status_code == 303, done.text
        page = browser.get("/portal/billing")
        assert page.status_code == 200
        return table_rows(page.text)


def check_dashboard(demo: LiveDemo, vin: str, today: str) -> None:
    """The usage page shows the same amounts per category, day, app and vehicle."""
    rows = dashboard_rows(demo)
    for category, cost in DASHBOARD_COSTS.items():
        assert rows[category][-1] == cost, rows[category]
        assert rows[category][0].split()[0] == str(QUANTITIES[Category(category)])
    assert rows["Subtotal"] == ["0.033000"]
    assert rows["Credit left"] == ["0.000000"]
    paid = [cells for first, cells in rows.items() if first.startswith("To pay")]
    assert paid == [[TOTAL]]
    assert rows[today][:5] == BREAKDOWN
    assert rows[APP_NAME][:5] == BREAKDOWN
    assert rows[f"Vehicle {vin}"][:5] == BREAKDOWN
