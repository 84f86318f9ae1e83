"""The developer's billing pages over real HTTP: usage, invoices and billing settings.

A private demo (monthly credit €0.01, so the total is not swallowed by the credit) serves a
known mix of Fleet API requests made with the demo app's token; its owner, the demo developer,
signs in with the password and TOTP secret from demo.json and reads the result.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from fractions import Fraction
from uuid import uuid4

import httpx
import pyotp
import pytest
from sqlalchemy import select

from flotta.accounts.models import User
from flotta.billing.categories import Category
from flotta.billing.invoices import close_month
from flotta.billing.ledger import UsageEvent, write_events
from flotta.billing.queries import month_of
from flotta.portal.charts import LABEL_WIDTH, VALUE_WIDTH, WIDTH, Bar, bar_chart
from tests.apps.support import browser, new_email
from tests.apps.support import make_user as insert_user
from tests.live import LiveDemo, start_live_demo
from tests.portal.account_support import Browser, sign_in, text_of

DEVELOPER = "developer@flotta.demo"
MINUS = "\N{MINUS SIGN}"  # how the pages show a deduction
# Hand-computed: data 7 x €1/500 = 0.014, commands 2 x €1/1000 = 0.002, wakes 1 x €1/50 = 0.02.
SUBTOTAL = "0.036000"
# 0.036 - the 0.01 credit = 0.026, rounded half up once: 0.03.
TOTAL = "0.03"
# The closed month: 1,250 commands = €1.25, less the credit = €1.24.
OLD_COMMANDS = 1_250


@dataclass
class Billed:
    demo: LiveDemo
    developer: Browser
    month: str
    old_month: str
    today: str

    def api(self) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.demo.token}"}
        return httpx.Client(base_url=self.demo.base_url, headers=headers, timeout=15)


def _drive_usage(demo: LiveDemo) -> None:
    """Seven data requests on two cars, two commands and a wake, each checked as billed."""
    first, second = demo.vins[0], demo.vins[1]
    calls = [("GET", f"/api/1/vehicles/{first}/vehicle_data", "data")] * 4
    calls += [("GET", f"/api/1/vehicles/{second}/vehicle_data", "data")] * 3
    calls += [
        ("POST", f"/api/1/vehicles/{first}/command/flash_lights", "commands"),
        ("POST", f"/api/1/vehicles/{first}/command/honk_horn", "commands"),
        ("POST", f"/api/1/vehicles/{first}/wake_up", "wakes"),
    ]
    headers = {"Authorization": f"Bearer {demo.token}"}
    with httpx.Client(base_url=demo.base_url, headers=headers, timeout=15) as api:
        for method, path, category in calls:
            answer = api.request(method, path)
            assert answer.status_code == 200, answer.text
            assert answer.headers["flotta-billing-category"] == category
            assert "flotta-usage-id" in answer.headers


def _months_back(now: datetime, count: int) -> datetime:
    day = now.replace(day=1)
    for _ in range(count):
        day = (day - timedelta(days=1)).replace(day=1)
    return day.replace(day=15)


def _close_an_old_month(demo: LiveDemo) -> str:
    """Put 1,250 commands in the ledger two months ago and close that month."""
    runtime = demo.handle.runtime
    assert runtime.meter is not None
    book = runtime.meter.book
    now = runtime.clock.now()
    when = _months_back(now, 2)

    async def seed() -> None:
        async with runtime.sessions() as db, db.begin():
            user = (await db.execute(select(User).where(User.email == DEVELOPER))).scalar_one()
            event = UsageEvent(
                uuid4().hex,
                user.id,
                str(demo.info["client_id"]),
                f"vehicle:{demo.vins[0]}",
                Category.COMMANDS,
                OLD_COMMANDS,
                when,
            )
            await write_events(db, [event])
        await close_month(runtime.sessions, book, month_of(when.date()), now)

    demo.call(seed())
    return month_of(when.date())


def _sign_in_developer(demo: LiveDemo) -> Browser:
    """The demo developer, signed in with demo.json's password and TOTP code."""
    person = demo.info["developer"]
    page = Browser(demo.base_url)
    step = sign_in(page, person["email"], person["password"], next_url="/portal/billing")
    assert step.status_code == 303 and step.headers["location"].startswith("/portal/login/mfa")
    code = pyotp.TOTP(person["totp_secret"]).now()
    done = page.submit(
        step.headers["location"], "/portal/login/mfa", code=code, next="/portal/billing"
    )
    assert done.status_code == 303 and done.headers["location"] == "/portal/billing"
    return page


@pytest.fixture(scope="module")
def billed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Billed]:
    demo = start_live_demo(tmp_path_factory.mktemp("usage"), billing={"monthly_credit": "0.01"})
    try:
        _drive_usage(demo)
        old_month = _close_an_old_month(demo)
        now = demo.handle.runtime.clock.now()
        with _sign_in_developer(demo) as developer:
            yield Billed(demo, developer, month_of(now.date()), old_month, now.date().isoformat())
    finally:
        demo.stop()


def test_usage_page_shows_exact_quantities_and_costs_per_category_day_app_and_vehicle(
    billed: Billed,
) -> None:
    page = billed.developer.get("/portal/billing")
    assert page.status_code == 200
    text = text_of(page)
    first, second = billed.demo.vins[0], billed.demo.vins[1]
    for row in (
        "streaming 0 signals 150,000 per EUR 1 0.000000",
        "commands 2 commands 1,000 per EUR 1 0.002000",
        "data 7 data requests 500 per EUR 1 0.014000",
        "wakes 1 wake 50 per EUR 1 0.020000",
        f"Subtotal {SUBTOTAL} Monthly credit used (of €0.01) {MINUS}0.010000 Credit left 0.000000",
        f"To pay, rounded to the cent {TOTAL}",
        # Day, app and vehicle: streaming, commands, data, wakes, then the exact cost.
        f"{billed.today} 0 2 7 1 {SUBTOTAL}",
        f"Flotta Demo App 0 2 7 1 {SUBTOTAL} none",
        f"Vehicle {first} 0 2 4 1 0.030000",
        f"Vehicle {second} 0 0 3 0 0.006000",
        "Your account is active: usage is at 0 % of your €100.00 threshold",
    ):
        assert row in text
    assert f'<option value="{billed.old_month}">' in page.text
    assert f'<option value="{billed.month}" selected>{billed.month} (this month)' in page.text


def test_each_breakdown_has_a_labelled_svg_chart_and_a_captioned_table(billed: Billed) -> None:
    page = billed.developer.get("/portal/billing").text
    charts = re.findall(r'<svg class="chart" id="([a-z-]+)" role="img"', page)
    assert charts == ["chart-categories", "chart-days", "chart-apps", "chart-devices"]
    assert '<title id="chart-categories-title">Cost per category' in page
    desc = re.search(r'<desc id="chart-devices-desc">([^<]*)</desc>', page)
    assert desc is not None
    first, second = billed.demo.vins[0], billed.demo.vins[1]
    assert desc.group(1) == f"Vehicle {first}: 0.030000 EUR; Vehicle {second}: 0.006000 EUR"
    assert page.count("<caption>") == 4
    assert "<script" not in page.split("</head>")[1]  # charts need no script


def test_a_past_month_shows_its_own_usage(billed: Billed) -> None:
    text = text_of(billed.developer.get("/portal/billing", month=billed.old_month))
    assert "commands 1,250 commands 1,000 per EUR 1 1.250000" in text
    assert "data 0 data requests" in text
    assert "To pay, rounded to the cent 1.24" in text
    assert "This month so far" not in text


def test_the_draft_invoice_lists_lines_per_category_and_app_with_the_rounded_total(
    billed: Billed,
) -> None:
    page = billed.developer.get(f"/portal/billing/invoices/{billed.month}")
    assert page.status_code == 200
    text = text_of(page)
    client_id = billed.demo.info["client_id"]
    assert f"Draft invoice {billed.month}" in text
    for line in (
        f"commands Flotta Demo App ( {client_id} ) 2 0.001 0.002000",
        f"data Flotta Demo App ( {client_id} ) 7 0.002 0.014000",
        f"wakes Flotta Demo App ( {client_id} ) 1 0.02 0.020000",
        # Rounded once each to the cent (docs/billing.md), the exact subtotal beside it.
        f"Subtotal, rounded to the cent 0.04 (exactly 0.036) Monthly credit applied {MINUS}0.01",
        f"Total, rounded to the cent EUR {TOTAL}",
    ):
        assert line in text
    assert "streaming" not in text.split("Line items")[1]
    assert "@media print" in page.text and "size: A4" in page.text


def test_the_invoice_list_has_the_draft_and_the_closed_month(billed: Billed) -> None:
    text = text_of(billed.developer.get("/portal/billing/invoices"))
    assert f"{billed.month} Draft (month in progress) 0.04 {TOTAL}" in text
    assert f"{billed.old_month} Closed on {billed.today} 1.25 1.24" in text
    closed = text_of(billed.developer.get(f"/portal/billing/invoices/{billed.old_month}"))
    assert f"Invoice {billed.old_month} Billed to Demo Developer" in closed
    assert f"Closed on {billed.today}" in closed
    assert "commands Flotta Demo App" in closed and "1,250 0.001 1.250000" in closed
    assert "Total, rounded to the cent EUR 1.24" in closed


@pytest.mark.parametrize("month", ["2026-13", "nope", "2026-1", "2999-01"])
def test_a_bad_or_future_month_is_a_404_page(billed: Billed, month: str) -> None:
    for path in (f"/portal/billing/invoices/{month}", f"/portal/billing?month={month}"):
        page = billed.developer.client.get(path)
        assert page.status_code == 404
        assert f"There is no billing month '{month}'" in text_of(page)


def test_another_developer_never_sees_this_accounts_usage_or_invoices(billed: Billed) -> None:
    email = new_email()
    insert_user(billed.demo, email)
    with browser(billed.demo, email) as other:
        for path in (
            "/portal/billing",
            f"/portal/billing?month={billed.old_month}",
            "/portal/billing/invoices",
            f"/portal/billing/invoices/{billed.month}",
            f"/portal/billing/invoices/{billed.old_month}",
            "/portal/billing/settings",
        ):
            page = other.get(path)
            assert page.status_code == 200
            shown = text_of(page)
            assert "Flotta Demo App" not in shown and billed.demo.vins[0] not in shown
            assert "4242" not in shown
        invoice = text_of(other.get(f"/portal/billing/invoices/{billed.old_month}"))
        assert f"No billable usage in {billed.old_month}" in invoice
        assert "Total: EUR 0.00" in invoice
        listed = text_of(other.get("/portal/billing/invoices"))
        assert billed.old_month not in listed
        refused = _post(
            other, "/portal/billing/settings/budget", client_id=_client(billed), budget="5"
        )
        assert refused.status_code == 400
        assert f"No app '{_client(billed)}' on this account." in text_of(refused)
    with httpx.Client(base_url=billed.demo.base_url, follow_redirects=False) as stranger:
        answer = stranger.get(f"/portal/billing/invoices/{billed.month}")
        assert answer.status_code == 303
        assert answer.headers["location"].startswith("/portal/login?next=")


def _client(billed: Billed) -> str:
    return str(billed.demo.info["client_id"])


def _post(client: httpx.Client, action: str, **fields: str) -> httpx.Response:
    page = client.get("/portal/billing/settings")
    token = re.search(r'name="csrf_token" value="([0-9a-f]+)"', page.text)
    assert token is not None
    return client.post(action, data={"csrf_token": token.group(1), **fields})


def test_raising_the_threshold_needs_a_card_and_the_card_shows_only_brand_and_last_four(
    billed: Billed,
) -> None:
    email = new_email()
    insert_user(billed.demo, email)
    year = billed.demo.handle.runtime.clock.now().year + 3
    with browser(billed.demo, email) as fresh:
        refused = _post(fresh, "/portal/billing/settings/threshold", threshold="50")
        assert refused.status_code == 400
        message = "Add a payment method before raising the threshold above 0.01 EUR."
        assert message in text_of(refused)
        shown = text_of(fresh.get("/portal/billing/settings"))
        assert "0 % of your €0.01 threshold (the default, equal to the monthly credit)" in shown
        bad = _post(
            fresh,
            "/portal/billing/settings/card",
            card_number="4242 4242 4242 4241",
            expiry=f"12/{year}",
        )
        assert bad.status_code == 400 and "The card number is not valid" in text_of(bad)
        card = _post(
            fresh,
            "/portal/billing/settings/card",
            card_number="5555 5555 5555 4444",
            expiry=f"7/{year}",
        )
        assert card.status_code == 303 and card.headers["location"].endswith("?notice=card")
        page = fresh.get("/portal/billing/settings")
        assert f"On file: Mastercard •••• 4444, expires 07/{year}" in text_of(page)
        assert "5555" not in text_of(page)
        raised = _post(fresh, "/portal/billing/settings/threshold", threshold="50")
        assert raised.status_code == 303
        text = text_of(fresh.get("/portal/billing/settings?notice=threshold"))
        assert "Billing threshold saved" in text and "0 % of your €50.00 threshold" in text
        assert "0 % of your €50.00 threshold" in text_of(fresh.get("/portal/billing"))


def test_a_budget_is_set_warns_at_once_and_is_cleared(billed: Billed) -> None:
    client_id = _client(billed)
    developer = billed.developer.client
    with billed.api() as api:
        assert "flotta-budget-warning" not in api.get("/api/1/vehicles").headers
        saved = _post(
            developer, "/portal/billing/settings/budget", client_id=client_id, budget="0.02"
        )
        assert saved.status_code == 303
        page = developer.get("/portal/billing/settings")
        assert f'id="budget-{client_id}" name="budget" value="0.02"' in page.text
        assert "Flotta Demo App 0.036000 Budget for Flotta Demo App" in text_of(page)
        assert f"Flotta Demo App 0 2 7 1 {SUBTOTAL} €0.02" in text_of(
            developer.get("/portal/billing")
        )
        # Spent 0.036 of a 0.02 budget: the very next response warns (the meter forgot its cache).
        assert "flotta-budget-warning" in api.get("/api/1/vehicles").headers
        cleared = _post(
            developer, "/portal/billing/settings/budget", client_id=client_id, clear="1"
        )
        assert cleared.headers["location"].endswith("?notice=budget-cleared")
        assert 'name="budget" value=""' in developer.get("/portal/billing/settings").text
        assert "flotta-budget-warning" not in api.get("/api/1/vehicles").headers


def test_a_threshold_below_the_usage_disables_the_account_until_it_is_raised(
    billed: Billed,
) -> None:
    developer = billed.developer.client
    with billed.api() as api:
        try:
            lowered = _post(developer, "/portal/billing/settings/threshold", threshold="0.03")
            assert lowered.status_code == 303
            assert api.get("/api/1/vehicles").json()["error"] == "account disabled: EXCEEDED_LIMIT"
            text = text_of(developer.get("/portal/billing"))
            assert "Your account is disabled (EXCEEDED_LIMIT)" in text
            assert "120 % of your €0.03 threshold" in text_of(
                developer.get("/portal/billing/settings")
            )
        finally:
            _post(developer, "/portal/billing/settings/threshold", threshold="100")
        assert api.get("/api/1/vehicles").status_code == 200
        assert "Your account is active" in text_of(developer.get("/portal/billing"))


@pytest.mark.parametrize(
    ("action", "fields"),
    [
        ("card", {"card_number": "4242424242424242", "expiry": "12/40"}),
        ("threshold", {"threshold": "0.01"}),
        ("budget", {"client_id": "", "budget": "1"}),
    ],
)
def test_each_settings_form_needs_its_csrf_token(
    billed: Billed, action: str, fields: dict[str, str]
) -> None:
    developer = billed.developer.client
    before = developer.get("/portal/billing/settings").text
    for token in ({}, {"csrf_token": "0" * 64}):
        answer = developer.post(f"/portal/billing/settings/{action}", data={**fields, **token})
        assert answer.status_code == 403
        assert "The form expired or came from another site" in text_of(answer)
    after = developer.get("/portal/billing/settings").text
    assert re.sub(r'value="[0-9a-f]{64}"', "", before) == re.sub(r'value="[0-9a-f]{64}"', "", after)


def test_the_portal_links_to_the_billing_pages(billed: Billed) -> None:
    dashboard = billed.developer.get("/portal/").text
    for path in ("/portal/billing", "/portal/billing/invoices", "/portal/billing/settings"):
        assert f'href="{path}"' in dashboard


def test_bar_lengths_follow_the_exact_values_and_labels_are_escaped() -> None:
    chart = bar_chart(
        "c",
        "Cost <by> app",
        [
            Bar("<script>alert(1)</script>", Fraction(2, 3), "0.666666 EUR"),
            Bar("small", Fraction(1, 150_000), "0.000006 EUR"),
            Bar("none", 0, "0.000000 EUR"),
        ],
    )
    widths = [int(w) for w in re.findall(r'<rect [^>]*width="(\d+)"', chart)]
    assert widths == [
        WIDTH - LABEL_WIDTH - VALUE_WIDTH,
        1,
        0,
    ]  # the largest fills the room; tiny still shows
    assert "<script>" not in chart and "&lt;script&gt;" in chart
    assert '<title id="c-title">Cost &lt;by&gt; app</title>' in chart
    assert bar_chart("empty", "Nothing", []) == ""
