"""The portal's spend estimator: open to everyone, a form with CSRF, errors by their fields."""

from __future__ import annotations

import html
import re

from tests.live import LiveDemo
from tests.portal.account_support import Browser, text_of

PAGE = "/portal/billing/estimate"
FORM = {
    "vehicles": "3",
    "fields": "Soc 7 1\nLocation:45:0.3\n",
    "commands_per_day": "150",
    "data_per_day": "33",
    "wakes_per_day": "3",
    "month": "2026-02",
    "days": "",
}


def test_anyone_can_open_it_from_the_navigation(live: LiveDemo) -> None:
    with Browser(live.base_url) as browser:
        home = browser.get("/portal/")
        assert f'href="{PAGE}"' in home.text
        page = browser.get(PAGE)
    assert page.status_code == 200
    assert "Estimate your spend" in text_of(page)
    # Filled in with the seed's example, so one click shows it.
    assert "Location 10 1/24" in page.text and 'value="100"' in page.text


def test_the_seeds_example_is_covered_by_the_credit(live: LiveDemo) -> None:
    with Browser(live.base_url) as browser:
        token = browser.csrf(PAGE)
        page = browser.get(PAGE)
        example = dict(re.findall(r'name="(\w+)" value="([^"]*)"', page.text))
        fields = re.search(
            r'<textarea id="fields" name="fields"[^>]*>([^<]*)</textarea>', page.text
        )
        assert fields is not None
        answer = browser.post(PAGE, {**example, "fields": fields.group(1), "csrf_token": token})
    assert answer.status_code == 200, text_of(answer)
    shown = text_of(answer)
    assert "EUR 0.00 a month after the credit" in shown
    assert "Subtotal 8.76" in shown and "Total after credit 0.00" in shown


def test_a_fleet_beyond_the_credit_shows_what_is_left_to_pay(live: LiveDemo) -> None:
    with Browser(live.base_url) as browser:
        answer = browser.submit(PAGE, PAGE, **FORM)
    shown = text_of(answer)
    assert answer.status_code == 200, shown
    assert "3 vehicles, 28 days (2026-02)" in shown
    assert "streaming 1,085,184" in shown and "exactly 7.23456" in shown
    assert "Subtotal 30.42" in shown and "Total after credit 20.42" in shown


def test_each_problem_is_shown_next_to_its_field(live: LiveDemo) -> None:
    bad = {**FORM, "vehicles": "lots", "fields": "Locaton 60 0.1\nSoc\n", "days": "3"}
    with Browser(live.base_url) as browser:
        answer = browser.submit(PAGE, PAGE, **bad)
    assert answer.status_code == 400
    vehicles = re.search(r'<p class="error" id="vehicles-error">([^<]*)</p>', answer.text)
    fields = re.search(r'<p class="error" id="fields-error">([^<]*)</p>', answer.text)
    month = re.search(r'<p class="error" id="month-error">([^<]*)</p>', answer.text)
    assert vehicles and "valid integer" in vehicles.group(1)
    assert fields, answer.text
    fields_problem = html.unescape(fields.group(1))
    assert "line 1, name: 'Locaton' is not a telemetry field" in fields_problem
    assert "did you mean Location" in fields_problem
    assert "line 2: write `Name interval share`" in fields_problem
    assert month and "not both" in month.group(1)
    assert 'id="vehicles" name="vehicles" value="lots"' in answer.text  # input kept
    assert 'aria-invalid="true" aria-describedby="vehicles-error vehicles-hint"' in answer.text


def test_a_post_without_the_csrf_token_is_refused(live: LiveDemo) -> None:
    with Browser(live.base_url) as browser:
        browser.get(PAGE)
        answer = browser.post(PAGE, {**FORM, "csrf_token": "0" * 64})
    assert answer.status_code == 403
    assert "Subtotal" not in answer.text
