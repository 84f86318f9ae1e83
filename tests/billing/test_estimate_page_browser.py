"""The estimator page in Debian's Chromium with JavaScript off: labels, errors, the result."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.conftest import chromium_path
from tests.live import LiveDemo

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def page_without_js() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    executable = chromium_path()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        try:
            context = browser.new_context(java_script_enabled=False)
            context.set_default_timeout(15_000)
            yield context.new_page()
        finally:
            browser.close()


def test_a_visitor_estimates_by_label_without_javascript(
    live: LiveDemo, page_without_js: Any
) -> None:
    page = page_without_js
    page.goto(f"{live.base_url}/portal/")
    page.get_by_role("link", name="Estimate your spend").click()
    # The seed's example is filled in: one click shows it is covered by the credit.
    page.get_by_role("button", name="Estimate").click()
    assert "EUR 0.00 a month after the credit" in page.get_by_role("heading", level=2).inner_text()

    page.get_by_label("Vehicles").fill("10")
    page.get_by_label("Streamed fields").fill("Location 10 1\nVehicleSped 10 1")
    page.get_by_role("button", name="Estimate again").click()
    problem = page.locator("#fields-error")
    assert "did you mean VehicleSpeed" in problem.inner_text()
    assert page.get_by_label("Streamed fields").get_attribute("aria-invalid") == "true"

    page.get_by_label("Streamed fields").fill("Location 10 1\nVehicleSpeed 10 1")
    page.get_by_role("button", name="Estimate").click()
    # 2 fields x 8,640 values a day x 10 cars x 30 days = 5,184,000 signals = EUR 34.56,
    # plus the form's 100 commands and 2 wakes a day: 30.00 + 12.00; 76.56 - 10.00 credit.
    totals = page.locator("tfoot").inner_text()
    assert "76.56" in totals and "66.56" in totals
