"""`POST /flotta/v1/billing/estimate` on a live server: no token, the envelope, 400s by field."""

from __future__ import annotations

from collections.abc import Callable

import httpx

from tests.billing.test_estimator import DRIVING_HOUR
from tests.live import LiveDemo

PATH = "/flotta/v1/billing/estimate"


def test_the_seeds_example_over_http_needs_no_token(live: LiveDemo) -> None:
    body = {"vehicles": 2, "fields": DRIVING_HOUR, "commands_per_day": 100, "wakes_per_day": 2}
    answer = httpx.post(f"{live.base_url}{PATH}", json=body, timeout=10)
    assert answer.status_code == 200, answer.text
    result = answer.json()["response"]
    assert [(c["category"], c["quantity"], c["cost"]) for c in result["categories"]] == [
        ("streaming", 54_000, "0.36"),
        ("commands", 6_000, "6.00"),
        ("data", 0, "0.00"),
        ("wakes", 120, "2.40"),
    ]
    assert (result["subtotal"], result["credit_applied"], result["total"]) == (
        "8.76",
        "8.76",
        "0.00",
    )


def test_every_bad_input_is_a_400_naming_the_field(live: LiveDemo) -> None:
    cases = [
        ({"vehicles": 2, "fields": [{"name": "Locaton", "interval_seconds": 60}]}, "fields.0.name"),
        (
            {"vehicles": 2, "fields": [{"name": "Soc", "interval_seconds": 0}]},
            "fields.0.interval_seconds",
        ),
        ({"vehicles": 2, "month": "2026-02", "days": 3}, "month"),
        ({"vehicles": "two"}, "vehicles"),
        ({}, "vehicles"),
    ]
    for body, where in cases:
        answer = httpx.post(f"{live.base_url}{PATH}", json=body, timeout=10)
        assert answer.status_code == 400, (body, answer.text)
        error = answer.json()
        assert error["response"] is None and error["error"] == "invalid_request"
        assert where in error["messages"], (where, error)
        assert where in error["error_description"] or len(error["messages"]) > 1


def test_a_body_that_is_not_json_is_a_400(live: LiveDemo) -> None:
    answer = httpx.post(
        f"{live.base_url}{PATH}",
        content=b"vehicles=2",
        headers={"Content-Type": "application/json"},
        timeout=10,
    )
    assert answer.status_code == 400
    error = answer.json()
    assert error["response"] is None
    # Said as what it is, not as "invalid 1 param: JSON decode error" (1: a character position).
    assert error["error_description"].startswith(
        "invalid body param: request body is not valid JSON: "
    ), error
    assert list(error["messages"]) == ["body"]


def test_a_validators_own_message_reaches_the_developer_without_pydantics_prefix(
    live: LiveDemo,
) -> None:
    body = {"vehicles": True}
    answer = httpx.post(f"{live.base_url}{PATH}", json=body, timeout=10)
    assert answer.status_code == 400
    assert answer.json()["error_description"] == (
        "invalid vehicles param: must be a whole number, not true or false"
    )


def test_the_servers_price_book_prices_the_estimate(demo_factory: Callable[..., LiveDemo]) -> None:
    demo = demo_factory(
        vehicles=1,
        billing={"currency": "USD", "commands_per_currency_unit": 500, "monthly_credit": "5.00"},
    )
    body = {"vehicles": 1, "commands_per_day": 100, "days": 30}
    result = httpx.post(f"{demo.base_url}{PATH}", json=body, timeout=10).json()["response"]
    # 3,000 commands at 500 per dollar = $6.00; $5.00 credit leaves $1.00.
    assert (result["currency"], result["subtotal"], result["total"]) == ("USD", "6.00", "1.00")
