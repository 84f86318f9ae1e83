"""Account forms are limited per client address: one password cannot be tried on many
accounts, and reset or sign-up mail cannot be sent without bound."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.live import LiveDemo, start_live_demo
from tests.portal.account_support import Browser, new_email, text_of

LIMIT = 3


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveDemo]:
    demo = start_live_demo(
        Path(tmp_path_factory.mktemp("sign-in-limit")),
        vehicles=1,
        ratelimit={"enabled": True, "sign_in": f"{LIMIT}/minute"},
    )
    try:
        yield demo
    finally:
        demo.stop()


def test_past_the_limit_every_account_form_answers_429_until_the_window_passes(
    limited: LiveDemo,
) -> None:
    developer = limited.info["developer"]
    with Browser(limited.base_url) as browser:
        guesses = [
            browser.submit("/portal/login", "/portal/login", email=new_email(), password="guess")
            for _ in range(LIMIT)
        ]
        # The right password does not get through either: the budget is the address's.
        right = browser.submit(
            "/portal/login",
            "/portal/login",
            email=developer["email"],
            password=developer["password"],
            next="/portal/",
        )
        reset = browser.submit("/portal/forgot", "/portal/forgot", email=developer["email"])
        signup = browser.submit(
            "/portal/signup", "/portal/signup", email=new_email(), full_name="A", password="x" * 16
        )
        cookie = browser.session_cookie
    assert [g.status_code for g in guesses] == [400] * LIMIT
    for refused in (right, reset, signup):
        assert refused.status_code == 429
        wait = int(refused.headers["retry-after"])
        assert 1 <= wait <= 60
        assert f"Try again in {wait} seconds" in text_of(refused)
    assert cookie is None  # no session was started for the refused sign-in
