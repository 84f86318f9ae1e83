"""Sign-in, two-step sign-in with TOTP and recovery codes, and lockout, over real HTTP."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.live import LiveDemo
from tests.portal.account_support import (
    PASSWORD,
    Browser,
    code_at,
    enrol_totp,
    link_in,
    new_email,
    sign_in,
    sign_out,
    sign_up,
    text_of,
    update_user,
    user_row,
    verified_account,
    wait_for_mail,
)

LOCKED = "sign-in to this account is locked until"


def test_sign_in_goes_to_next_and_refuses_wrong_or_unknown_alike(live: LiveDemo) -> None:
    email = new_email()
    with Browser(live.base_url) as browser:
        sign_up(browser, email)
        sign_out(browser)
        wrong = sign_in(browser, email, "not the password at all")
        unknown = sign_in(browser, new_email(), PASSWORD)
        assert wrong.status_code == unknown.status_code == 400
        assert "The e-mail address or the password is wrong." in text_of(wrong)
        assert "The e-mail address or the password is wrong." in text_of(unknown)
        assert f'value="{email}"' in wrong.text

        right = sign_in(browser, email.upper(), next_url="/portal/account/mfa")
        assert right.status_code == 303
        assert right.headers["location"] == "/portal/account/mfa"
        assert "httponly" in right.headers["set-cookie"].lower()
        assert browser.get("/portal/account").status_code == 200
        # A signed-in visit to the login page goes straight on.
        assert browser.get("/portal/login", next="/portal/account").status_code == 303


def test_next_cannot_send_the_browser_to_another_site(live: LiveDemo) -> None:
    email = new_email()
    with Browser(live.base_url) as browser:
        sign_up(browser, email)
        sign_out(browser)
        for target in ("//evil.example/x", "https://evil.example/", "/\\evil.example"):
            answer = sign_in(browser, email, next_url=target)
            assert answer.headers["location"] == "/portal/", target
            sign_out(browser)


def test_totp_codes_replay_and_recovery_codes(live: LiveDemo) -> None:
    email = new_email()
    with Browser(live.base_url) as browser:
        verified_account(live, browser, email)
        authenticator, codes = enrol_totp(browser)
        assert "on since" in text_of(browser.get("/portal/account"))
        assert "10 unused recovery codes" in text_of(browser.get("/portal/account"))
        sign_out(browser)

        password_step = sign_in(browser, email, next_url="/portal/account")
        assert password_step.headers["location"] == "/portal/login/mfa?next=%2Fportal%2Faccount"
        # Half-signed-in: the account pages still send you to the code step.
        pending = browser.get("/portal/account")
        assert pending.headers["location"].startswith("/portal/login/mfa?next=")
        next_code = code_at(authenticator, 1)  # the enrolment used the current step
        done = browser.submit(
            password_step.headers["location"],
            "/portal/login/mfa",
            code=next_code,
            next="/portal/account",
        )
        assert done.status_code == 303
        assert done.headers["location"] == "/portal/account"
        assert browser.get("/portal/account").status_code == 200
        sign_out(browser)

        sign_in(browser, email)
        replay = browser.submit("/portal/login/mfa", "/portal/login/mfa", code=next_code)
        assert replay.status_code == 400
        assert "already used" in text_of(replay)
        recovered = browser.submit("/portal/login/mfa", "/portal/login/mfa", code=codes[0].upper())
        assert recovered.status_code == 303
        assert "9 unused recovery codes" in text_of(browser.get("/portal/account"))
        sign_out(browser)

        sign_in(browser, email)
        again = browser.submit("/portal/login/mfa", "/portal/login/mfa", code=codes[0])
        assert again.status_code == 400
        assert "not valid" in text_of(again)
    row = user_row(live, email)
    assert row is not None and row.failed_logins == 1


def test_new_recovery_codes_need_a_current_code_and_replace_the_old(live: LiveDemo) -> None:
    email = new_email()
    with Browser(live.base_url) as browser:
        verified_account(live, browser, email)
        authenticator, old_codes = enrol_totp(browser)
        refused = browser.submit(
            "/portal/account/mfa", "/portal/account/recovery-codes", code="000000"
        )
        assert refused.status_code == 400
        answer = browser.submit(
            "/portal/account/mfa", "/portal/account/recovery-codes", code=code_at(authenticator, 1)
        )
        assert answer.status_code == 200
        assert "Your old codes no longer work" in text_of(answer)
        assert answer.headers["cache-control"] == "no-store"
        sign_out(browser)
        sign_in(browser, email)
        old = browser.submit("/portal/login/mfa", "/portal/login/mfa", code=old_codes[1])
        assert old.status_code == 400


def test_enrolment_needs_a_verified_address(live: LiveDemo) -> None:
    with Browser(live.base_url) as browser:
        sign_up(browser, new_email())
        page = browser.get("/portal/account/mfa")
        assert "Confirm your e-mail address first" in text_of(page)
        assert "<svg" not in page.text
        refused = browser.submit("/portal/account/mfa", "/portal/account/mfa", code="123456")
        assert refused.status_code == 400


def test_enrolment_shows_a_qr_code_and_the_secret_and_keeps_it_across_visits(
    live: LiveDemo,
) -> None:
    email = new_email()
    with Browser(live.base_url) as browser:
        verified_account(live, browser, email)
        first = browser.get("/portal/account/mfa")
        assert '<svg role="img" aria-label="QR code for your authenticator app"' in first.text
        assert first.headers["cache-control"] == "no-store"
        second = browser.get("/portal/account/mfa")
        secret = first.text.split('<code class="secret">')[1].split("</code>")[0]
        assert secret in second.text
        wrong = browser.submit("/portal/account/mfa", "/portal/account/mfa", code="12345x")
        assert wrong.status_code == 400
        assert "does not match" in text_of(wrong)
    row = user_row(live, email)
    assert row is not None and row.totp_enabled_at is None


def test_five_wrong_passwords_lock_the_account_until_time_passes(live: LiveDemo) -> None:
    email = new_email()
    with Browser(live.base_url) as browser:
        sign_up(browser, email)
        sign_out(browser)
        for _ in range(4):
            answer = sign_in(browser, email, "wrong password, again")
            assert LOCKED not in text_of(answer)
        fifth = text_of(sign_in(browser, email, "wrong password, again"))
        assert LOCKED in fifth
        right = sign_in(browser, email)
        assert right.status_code == 400
        assert LOCKED in text_of(right)
        until = user_row(live, email).locked_until  # type: ignore[union-attr]
        assert until is not None
        assert timedelta(seconds=55) < until - datetime.now(UTC) <= timedelta(seconds=60)
        assert until.strftime("%H:%M:%S UTC") in text_of(right)

        # A minute passes; one more failure locks for twice as long.
        update_user(live, email, locked_until=datetime.now(UTC) - timedelta(seconds=1))
        sixth = sign_in(browser, email, "wrong password, again")
        assert LOCKED in text_of(sixth)
        doubled = user_row(live, email).locked_until  # type: ignore[union-attr]
        assert doubled is not None
        assert timedelta(seconds=115) < doubled - datetime.now(UTC) <= timedelta(seconds=120)

        update_user(live, email, locked_until=datetime.now(UTC) - timedelta(seconds=1))
        assert sign_in(browser, email).status_code == 303
        row = user_row(live, email)
        assert row is not None and row.failed_logins == 0 and row.locked_until is None


def test_wrong_codes_count_towards_the_lock_and_a_reset_unlocks(live: LiveDemo) -> None:
    email = new_email()
    with Browser(live.base_url) as browser:
        verified_account(live, browser, email)
        authenticator, _ = enrol_totp(browser)
        sign_out(browser)
        sign_in(browser, email)
        for _ in range(4):
            browser.submit("/portal/login/mfa", "/portal/login/mfa", code="000000")
        fifth = browser.submit("/portal/login/mfa", "/portal/login/mfa", code="000000")
        assert LOCKED in text_of(fifth)
        right_code = browser.submit(
            "/portal/login/mfa", "/portal/login/mfa", code=code_at(authenticator, 1)
        )
        assert LOCKED in text_of(right_code)
        assert LOCKED in text_of(sign_in(browser, email))

        browser.submit("/portal/forgot", "/portal/forgot", email=email)
        link = link_in(wait_for_mail(live, email, count=2)[-1].body_text, "/portal/reset")
        new_password = "a brand new passphrase"
        browser.submit(
            link,
            "/portal/reset",
            token=link.split("token=")[1],
            password=new_password,
            confirm=new_password,
        )
        password_step = sign_in(browser, email, new_password)
        assert password_step.headers["location"].startswith("/portal/login/mfa")
        done = browser.submit(
            "/portal/login/mfa", "/portal/login/mfa", code=code_at(authenticator, 1)
        )
        assert done.status_code == 303
