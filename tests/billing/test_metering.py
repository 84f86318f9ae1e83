"""Metering as a developer meets it on a live server: headers, policies, ledger, threshold."""

from __future__ import annotations

import asyncio
import random
import re
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from flotta.accounts.models import User
from flotta.billing import accounts
from flotta.billing.categories import Category
from flotta.billing.ledger import UsageEvent
from flotta.billing.meter import KEYS_PER_READ, Meter
from flotta.billing.models import BillingAccount, UsageEventRow
from flotta.clock import ManualClock
from flotta.settings import Settings
from tests.billing.test_ledger import open_db
from tests.live import LiveDemo, start_live_demo
from tests.portal.account_support import mails_to

# Tiny data budget so a third read of one car is a 429; the rest never gets in the way.
LIMITS = {"data": "2/minute", "commands": "1000/minute", "wakes": "1000/minute"}
BILLING_HEADERS = (
    "flotta-billing-category",
    "flotta-billing-cost",
    "flotta-billing-currency",
    "flotta-credit-remaining",
    "flotta-usage-id",
    "flotta-budget-warning",
)
USAGE_ID = re.compile(r"^[0-9a-f]{16}-[0-9a-f]{24}$")  # µs since the epoch, 96 random bits


def _demo(tmp: pytest.TempPathFactory, name: str, **options: Any) -> Iterator[LiveDemo]:
    demo = start_live_demo(tmp.mktemp(name), vehicles=3, ratelimit=LIMITS, **options)
    try:
        yield demo
    finally:
        demo.stop()


@pytest.fixture(scope="module")
def fair_demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveDemo]:
    yield from _demo(tmp_path_factory, "fair")


@pytest.fixture(scope="module")
def tesla_demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveDemo]:
    yield from _demo(tmp_path_factory, "tesla", billing={"policy": "tesla"})


def _fresh_limits(demo: LiveDemo) -> LiveDemo:
    limiter = demo.handle.runtime.limiter
    assert limiter is not None
    demo.call(limiter.clear())
    return demo


@pytest.fixture
def fair(fair_demo: LiveDemo) -> LiveDemo:
    return _fresh_limits(fair_demo)


@pytest.fixture
def tesla(tesla_demo: LiveDemo) -> LiveDemo:
    return _fresh_limits(tesla_demo)


def client(demo: LiveDemo, token: str | None = None) -> httpx.Client:
    headers = {"Authorization": f"Bearer {token or demo.token}"}
    return httpx.Client(base_url=demo.base_url, headers=headers, timeout=15)


def billing(response: httpx.Response) -> dict[str, str]:
    return {name: response.headers[name] for name in BILLING_HEADERS if name in response.headers}


def meter_of(demo: LiveDemo) -> Meter:
    meter = demo.handle.runtime.meter
    assert meter is not None
    return meter


def ledger_ids(
    demo: LiveDemo, after: int = 0, column: Any = UsageEventRow.status
) -> dict[str, Any]:
    """The ledger's committed keys past row id `after`, with one column of each (the billed
    status unless told)."""

    async def query() -> dict[str, Any]:
        await meter_of(demo).ledger.flushed()
        async with demo.handle.runtime.sessions() as db:
            rows = await db.execute(
                select(UsageEventRow.key, column).where(UsageEventRow.id > after)
            )
            return {key: value for key, value in rows}

    return demo.call(query())


def last_row(demo: LiveDemo) -> int:
    async def query() -> int:
        await meter_of(demo).ledger.flushed()
        async with demo.handle.runtime.sessions() as db:
            return int(await db.scalar(select(func.coalesce(func.max(UsageEventRow.id), 0))) or 0)

    return demo.call(query())


def developer(demo: LiveDemo) -> tuple[int, str]:
    """The demo app's owner, who pays for the demo token's usage: (account id, e-mail)."""
    email = str(demo.info["developer"]["email"])

    async def query() -> int:
        async with demo.handle.runtime.sessions() as db:
            return int(await db.scalar(select(User.id).where(User.email == email)) or 0)

    return demo.call(query()), email


def set_threshold(demo: LiveDemo, account_id: int, amount: str) -> None:
    """As the portal's billing page does: save, then let the meter see it on the next request."""
    meter = meter_of(demo)

    async def change() -> None:
        async with demo.handle.runtime.sessions() as db, db.begin():
            await accounts.set_threshold(db, meter.book, account_id, amount)
        meter.forget(account_id)

    demo.call(change())


def credit(response: httpx.Response) -> Decimal:
    return Decimal(response.headers["flotta-credit-remaining"])


def test_billed_and_free_requests_carry_exact_headers(fair: LiveDemo) -> None:
    vin = fair.vins[0]
    with client(fair) as api:
        free = api.get("/api/1/vehicles")
        data = api.get(f"/api/1/vehicles/{vin}/vehicle_data")
        command = api.post(f"/api/1/vehicles/{vin}/command/flash_lights")
        wake = api.post(f"/api/1/vehicles/{vin}/wake_up")
    assert [r.status_code for r in (free, data, command, wake)] == [200] * 4
    left = credit(free)
    assert billing(free) == {
        "flotta-billing-category": "free",
        "flotta-billing-cost": "0",
        "flotta-billing-currency": "EUR",
        "flotta-credit-remaining": f"{left:.6f}",
    }
    expected = [(data, "data", "0.002"), (command, "commands", "0.001"), (wake, "wakes", "0.02")]
    for response, category, cost in expected:
        left -= Decimal(cost)
        headers = billing(response)
        assert USAGE_ID.match(headers.pop("flotta-usage-id"))
        assert headers == {
            "flotta-billing-category": category,
            "flotta-billing-cost": cost,
            "flotta-billing-currency": "EUR",
            "flotta-credit-remaining": f"{left:.6f}",
        }


def test_fair_policy_bills_none_of_404_408_429(fair: LiveDemo) -> None:
    awake, asleep = fair.vins[0], fair.vins[2]
    fair.put_to_sleep(asleep)
    start = last_row(fair)
    with client(fair) as api:
        served = [api.get(f"/api/1/vehicles/{awake}/vehicle_data") for _ in range(2)]
        limited = api.get(f"/api/1/vehicles/{awake}/vehicle_data")
        missing = api.get("/api/1/vehicles/5YJ3E1EB0TF999999/vehicle_data")
        offline = api.get(f"/api/1/vehicles/{asleep}/vehicle_data")
    statuses = [r.status_code for r in (*served, limited, missing, offline)]
    assert statuses == [200, 200, 429, 404, 408]
    for refused in (limited, missing, offline):
        headers = billing(refused)
        assert "flotta-usage-id" not in headers
        assert headers["flotta-billing-category"] == "data"
        assert headers["flotta-billing-cost"] == "0"
        assert credit(refused) == credit(served[1])
    assert ledger_ids(fair, start) == {r.headers["flotta-usage-id"]: 200 for r in served}


def test_a_first_party_token_is_not_metered(fair: LiveDemo) -> None:
    start = last_row(fair)
    token = fair.mint(["vehicle_device_data"])
    with client(fair, token) as api:
        answer = api.get(f"/api/1/vehicles/{fair.vins[1]}/vehicle_data")
    assert answer.status_code == 200
    assert billing(answer) == {"flotta-billing-category": "data"}
    assert ledger_ids(fair, start) == {}


def test_the_ledger_holds_exactly_the_usage_ids_clients_saw(fair: LiveDemo) -> None:
    vin = fair.vins[0]
    start = last_row(fair)
    calls: list[Callable[[httpx.Client], httpx.Response]] = [
        lambda api: api.post(f"/api/1/vehicles/{vin}/command/honk_horn"),
        lambda api: api.get("/api/1/vehicles"),
        lambda api: api.get("/api/1/vehicles/5YJ3E1EB0TF999999/vehicle_data"),
        lambda api: api.post(f"/api/1/vehicles/{vin}/wake_up"),
    ]
    with client(fair) as api, ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(lambda i: calls[i % len(calls)](api), range(80)))
    seen = [r.headers.get("flotta-usage-id") for r in answers]
    billed = [usage_id for usage_id in seen if usage_id is not None]
    assert [r.status_code for r in answers] == [200, 200, 404, 200] * 20
    assert len(billed) == len(set(billed)) == 40
    assert ledger_ids(fair, start) == dict.fromkeys(billed, 200)


@pytest.fixture(scope="module")
def unlimited_demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveDemo]:
    """Metering without rate limits: no rate-limit budget resolves the device for it."""
    demo = start_live_demo(
        tmp_path_factory.mktemp("unlimited"), vehicles=3, ratelimit={"enabled": False}
    )
    try:
        yield demo
    finally:
        demo.stop()


@pytest.mark.parametrize("limits", ["on", "off"])
def test_the_ledger_names_each_device_by_vin_or_site_id_whichever_tag_was_used(
    limits: str, request: pytest.FixtureRequest
) -> None:
    """A vehicle's rows carry its VIN whether the path named it by VIN or by Fleet id; a site's
    carry its id. With rate limits on or off (metering then looks the Fleet id up itself)."""
    fair: LiveDemo = request.getfixturevalue("fair" if limits == "on" else "unlimited_demo")
    assert (fair.handle.runtime.limiter is None) == (limits == "off")
    vin, site = fair.vins[1], fair.info["energy_sites"][0]
    start = last_row(fair)
    with client(fair) as api:
        fleet_id = next(
            v["id"] for v in api.get("/api/1/vehicles").json()["response"] if v["vin"] == vin
        )
        paths = [
            f"/api/1/vehicles/{vin}/vehicle_data",
            f"/api/1/vehicles/{fleet_id}/vehicle_data",
            f"/api/1/energy_sites/{site}/site_info",
        ]
        keys = []
        for path in paths:
            answer = api.get(path)
            assert answer.status_code == 200, (path, answer.text)
            keys.append(answer.headers["flotta-usage-id"])

    named = ledger_ids(fair, start, UsageEventRow.device)
    assert [named[key] for key in keys] == [f"vehicle:{vin}"] * 2 + [f"site:{site}"]


def test_tesla_policy_bills_404_408_429_but_never_5xx(tesla: LiveDemo) -> None:
    awake, asleep = tesla.vins[0], tesla.vins[2]
    tesla.put_to_sleep(asleep)
    start = last_row(tesla)
    car = tesla.device(awake)
    with client(tesla) as api:
        reads = [api.get(f"/api/1/vehicles/{awake}/vehicle_data") for _ in range(3)]
        missing = api.get("/api/1/vehicles/5YJ3E1EB0TF999999/vehicle_data")
        offline = api.get(f"/api/1/vehicles/{asleep}/vehicle_data")
        # A car whose answer cannot be decoded: the platform fails with a 5xx.
        car.handle_command = lambda _data: b"\xff\xff\xff"
        try:
            broken = api.post(f"/api/1/vehicles/{awake}/command/flash_lights")
        finally:
            del car.handle_command
    statuses = [r.status_code for r in (*reads, missing, offline, broken)]
    assert statuses == [200, 200, 429, 404, 408, 540]
    for response in (*reads, missing, offline):
        assert billing(response)["flotta-billing-cost"] == "0.002"
    assert "flotta-usage-id" not in billing(broken)
    assert billing(broken)["flotta-billing-cost"] == "0"
    assert credit(broken) == credit(offline)
    billed = {r.headers["flotta-usage-id"]: r.status_code for r in (*reads, missing, offline)}
    assert ledger_ids(tesla, start) == billed


async def test_billable_statuses_per_policy(tmp_path: Path) -> None:
    store = await open_db(tmp_path / "policy.db", accounts=0)
    try:
        for policy, billed_below in (("fair", 400), ("tesla", 500)):
            settings = Settings(demo=True, data_dir=tmp_path, billing={"policy": policy})
            meter = Meter(settings, store.sessions, ManualClock())
            statuses = (200, 201, 204, 304, 400, 401, 403, 404, 408, 412, 429, 499, 500, 503, 540)
            for status in statuses:
                assert meter.billable(status) is (status < billed_below), (policy, status)
    finally:
        await store.engine.dispose()


def _untemper(value: int) -> int:
    """The Mersenne Twister state word behind one 32-bit output."""
    value ^= value >> 18
    value ^= (value << 15) & 0xEFC60000
    result = value
    for _ in range(5):  # y ^= (y << 7) & 0x9D2C5680, undone 7 bits at a time
        result = value ^ ((result << 7) & 0x9D2C5680)
    value = result
    return value ^ (value >> 11) ^ (value >> 22)


async def test_usage_ids_do_not_let_an_app_predict_the_next_one(tmp_path: Path) -> None:
    """An app sees every Usage-Id it is billed: from enough of them, a seeded generator's
    next output, and so how many requests the process billed in between, could be worked out."""
    store = await open_db(tmp_path / "ids.db", accounts=0)
    try:
        meter = Meter(Settings(demo=True, data_dir=tmp_path), store.sessions, ManualClock())
        seen = [meter.new_key() for _ in range(208)]  # 624 32-bit words: a whole MT state
        words = []
        for key in seen:
            bits = int(key.split("-")[1], 16)
            words += [(bits >> shift) & 0xFFFFFFFF for shift in (0, 32, 64)]
        replica = random.Random()
        replica.setstate((3, (*[_untemper(w) for w in words], 624), None))
        guessed = f"{seen[0].split('-')[0]}-{replica.getrandbits(96):024x}"
        assert USAGE_ID.match(seen[0]) and len(set(seen)) == len(seen)
        assert meter.new_key() != guessed
    finally:
        await store.engine.dispose()


async def test_usage_ids_stay_unique_and_well_formed_across_random_reads(tmp_path: Path) -> None:
    """Keys come from one CSPRNG read per KEYS_PER_READ: none repeats across a refill."""
    store = await open_db(tmp_path / "ids.db", accounts=0)
    try:
        meter = Meter(Settings(demo=True, data_dir=tmp_path), store.sessions, ManualClock())
        keys = [meter.new_key() for _ in range(2 * KEYS_PER_READ + 5)]
        assert len(set(keys)) == len(keys)
        assert all(USAGE_ID.match(key) for key in keys)
    finally:
        await store.engine.dispose()


async def test_usage_ids_are_ordered_by_time(tmp_path: Path) -> None:
    """Keys lead with the time they were made, so the ledger's unique index grows at its end
    (the commits' cost depends on it): a later key sorts after an earlier one."""
    store = await open_db(tmp_path / "ids.db", accounts=0)
    try:
        meter = Meter(Settings(demo=True, data_dir=tmp_path), store.sessions, ManualClock())
        keys = []
        for _ in range(5):
            keys.append(meter.new_key())
            await asyncio.sleep(0.002)
        assert keys == sorted(keys) and len(set(keys)) == len(keys)
        made_at_us = int(keys[0].split("-")[0], 16)
        assert abs(made_at_us / 1e6 - time.time()) < 60
    finally:
        await store.engine.dispose()


def _threshold_mails(demo: LiveDemo, email: str) -> list[str]:
    return [m.subject for m in mails_to(demo, email) if "billing threshold" in m.subject]


def test_past_the_threshold_apps_get_403_until_it_is_raised(
    demo_factory: Callable[..., LiveDemo],
) -> None:
    demo = demo_factory(vehicles=1)
    account_id, email = developer(demo)
    set_threshold(demo, account_id, "0.01")  # five data requests
    read = f"/api/1/vehicles/{demo.vins[0]}/vehicle_data"
    with client(demo) as api:
        served = [api.get(read) for _ in range(5)]
        wake = read.replace("vehicle_data", "wake_up")
        refused = [api.get(read), api.get("/api/1/vehicles"), api.post(wake)]
        assert [r.status_code for r in served] == [200] * 5
        assert served[-1].headers["flotta-credit-remaining"] == "9.990000"
        for answer in refused:
            assert answer.status_code == 403
            body = answer.json()
            assert body["response"] is None
            assert body["error"] == "account disabled: EXCEEDED_LIMIT"
            assert "threshold" in body["error_description"]
            # Not billed, and labelled so like any response to the paying account's app.
            assert answer.headers["flotta-billing-cost"] == "0"
            assert answer.headers["flotta-billing-currency"] == "EUR"
            assert answer.headers["flotta-credit-remaining"] == "9.990000"
            assert "flotta-usage-id" not in answer.headers
        assert len(ledger_ids(demo)) == 5
        # 80 % of the threshold (the fourth request) sent one mail; more usage sends no other.
        assert len(_threshold_mails(demo, email)) == 1
        set_threshold(demo, account_id, "100.00")  # the demo developer has a card on file
        again = api.get(read)
    assert again.status_code == 200
    assert len(ledger_ids(demo)) == 6
    assert len(_threshold_mails(demo, email)) == 1


def test_an_app_budget_warns_by_header_and_one_mail(demo_factory: Callable[..., LiveDemo]) -> None:
    demo = demo_factory(vehicles=1)
    account_id, email = developer(demo)
    client_id = str(demo.info["client_id"])

    async def budget() -> None:
        async with demo.handle.runtime.sessions() as db, db.begin():
            await accounts.set_budget(db, account_id, client_id, "0.01")
        meter_of(demo).forget(account_id)

    demo.call(budget())
    with client(demo) as api:
        answers = [api.get(f"/api/1/vehicles/{demo.vins[0]}/vehicle_data") for _ in range(8)]
    assert [r.status_code for r in answers] == [200] * 8  # a budget only warns
    warned = ["flotta-budget-warning" in r.headers for r in answers]
    assert warned == [False] * 4 + [True] * 4  # from the fifth €0.002 request: €0.01
    ledger_ids(demo)  # flushed: every commit's notices are out
    budget_mails = [m for m in mails_to(demo, email) if "budget" in m.subject]
    assert len(budget_mails) == 1
    assert client_id in budget_mails[0].subject and "0.01" in budget_mails[0].body_text


async def test_a_new_month_readmits_an_account_past_its_threshold(tmp_path: Path) -> None:
    store = await open_db(tmp_path / "meter.db", accounts=1)
    account_id = store.accounts[0]
    async with store.sessions() as db, db.begin():
        db.add(BillingAccount(account_id=account_id, threshold="0.01"))
    clock = ManualClock(start=datetime(2026, 1, 31, 23, 59, tzinfo=UTC))
    meter = Meter(Settings(demo=True, data_dir=tmp_path), store.sessions, clock)
    await meter.start()
    try:
        for i in range(5):
            assert not meter.past_threshold(await meter.month(account_id))
            event = UsageEvent(f"u{i}", account_id, "app", "", Category.DATA, 1, clock.now())
            meter.record(event)
        assert meter.past_threshold(await meter.month(account_id))
        clock.advance(59)  # still 31 January: refused, from the database as from the cache
        await meter.ledger.flushed()
        meter.forget(account_id)
        assert meter.past_threshold(await meter.month(account_id))
        clock.advance(1)  # 1 February 00:00 UTC
        assert not meter.past_threshold(await meter.month(account_id))
        month = await meter.month(account_id)
        assert (month.month, month.quantities()) == ("2026-02", {})
    finally:
        await meter.stop()
        await store.engine.dispose()
