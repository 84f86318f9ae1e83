"""Sign-up, e-mail confirmation, the account page, CSRF and the demo outbox, over real HTTP."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from flotta.app import create_app
from flotta.settings import Settings
from tests.live import LiveDemo
from tests.portal.account_support import (
    PASSWORD,
    Browser,
    expire_links,
    link_in,
    mails_to,
    new_email,
    sign_in,
    sign_out,
    sign_up,
    text_of,
    user_row,
    wait_for_mail,
)


def test_sign_up_signs_in_and_the_mailed_link_verifies_the_address(live: LiveDemo) -> None:
    email = new_email()
    with Browser(live.base_url) as browser:
        answer = browser.submit(
            "/portal/signup",
            "/portal/signup",
            email=email.upper(),
            full_name="Ada Lovelace",
            password=PASSWORD,
        )
        assert answer.status_code == 303
        cookie = answer.headers["set-cookie"].lower()
        assert "flotta_session=" in cookie
        assert "httponly" in cookie
        assert "samesite=lax" in cookie
        assert "check your mail" in text_of(browser.get("/portal/signup/sent")).lower()
        account = text_of(browser.get("/portal/account"))
        assert f"{email} — not verified" in account

        mail = wait_for_mail(live, email)[0]
        assert mail.subject == "Confirm your e-mail address for Flotta"
        link = link_in(mail.body_text, "/portal/verify")
        assert "token=fev_" in link
        confirmed = browser.get(link)
        assert confirmed.status_code == 200
        assert f"{email} is confirmed" in text_of(confirmed)
        assert f"{email} — verified" in text_of(browser.get("/portal/account"))

        again = browser.get(link)
        assert again.status_code == 400
        assert "already used" in text_of(again)
    row = user_row(live, email)
    assert row is not None and row.password_hash is not None
    assert row.password_hash.startswith("$argon2id$")
    assert PASSWORD not in row.password_hash


def test_a_refused_password_says_why_and_keeps_what_was_typed(live: LiveDemo) -> None:
    email = new_email()
    with Browser(live.base_url) as browser:
        answer = browser.submit(
            "/portal/signup", "/portal/signup", email=email, full_name="Bo", password="short"
        )
        assert answer.status_code == 400
        page = text_of(answer)
        assert "at least 12 characters (yours has 5)" in page
        assert f'value="{email}"' in answer.text
        too_long = browser.submit(
            "/portal/signup", "/portal/signup", email=email, full_name="Bo", password="x" * 257
        )
        assert "at most 256 characters" in text_of(too_long)
        bad_address = browser.submit(
            "/portal/signup", "/portal/signup", email="nobody", full_name="Bo", password=PASSWORD
        )
        assert "Enter an e-mail address" in text_of(bad_address)
        forged_line = browser.submit(
            "/portal/signup",
            "/portal/signup",
            email=email,
            full_name="Eve\n[info     ] e-mail sent",
            password=PASSWORD,
        )
        assert "Enter your name on one line" in text_of(forged_line)
    assert user_row(live, email) is None
    assert mails_to(live, email) == []


def test_signing_up_with_a_taken_address_looks_the_same_and_mails_the_owner(
    live: LiveDemo,
) -> None:
    email = new_email()
    with Browser(live.base_url) as first:
        sign_up(first, email)
    with Browser(live.base_url) as second:
        second.submit(
            "/portal/signup",
            "/portal/signup",
            email=email,
            full_name="Mallory",
            password="another long password",
        )
        assert second.session_cookie is None
        assert "check your mail" in text_of(second.get("/portal/signup/sent")).lower()
    mails = wait_for_mail(live, email, count=2)
    assert "already exists" in mails[1].body_text
    assert "/portal/verify" not in mails[1].body_text
    with Browser(live.base_url) as owner:
        assert sign_in(owner, email).status_code == 303
        assert "Ada" in text_of(owner.get("/portal/account"))


def test_an_expired_link_offers_a_new_one(live: LiveDemo) -> None:
    email = new_email()
    with Browser(live.base_url) as browser:
        sign_up(browser, email)
        link = link_in(wait_for_mail(live, email)[0].body_text, "/portal/verify")
        expire_links(live, email)
        expired = browser.get(link)
        assert expired.status_code == 400
        assert "expired" in text_of(expired)
        assert 'action="/portal/verify/resend"' in expired.text
        assert expired.headers["referrer-policy"] == "no-referrer"

        resent = browser.submit(link, "/portal/verify/resend")
        assert resent.status_code == 303
        assert "new confirmation link" in text_of(browser.get(resent.headers["location"]))
        fresh = link_in(wait_for_mail(live, email, count=2)[1].body_text, "/portal/verify")
        assert fresh != link
        too_soon = browser.submit("/portal/account", "/portal/verify/resend")
        assert too_soon.status_code == 400
        assert "less than a minute ago" in text_of(too_soon)
        assert len(mails_to(live, email)) == 2
        assert browser.get(fresh).status_code == 200
        assert browser.get(link).status_code == 400


def test_a_form_without_the_right_csrf_token_is_refused_and_changes_nothing(
    live: LiveDemo,
) -> None:
    email = new_email()
    with Browser(live.base_url) as browser, Browser(live.base_url) as other:
        browser.get("/portal/signup")
        fields = {"email": email, "full_name": "Eve", "password": PASSWORD}
        missing = browser.post("/portal/signup", fields)
        assert missing.status_code == 403
        assert "reload the page" in text_of(missing)
        foreign = browser.post(
            "/portal/signup", {**fields, "csrf_token": other.csrf("/portal/signup")}
        )
        assert foreign.status_code == 403
        assert user_row(live, email) is None

        sign_up(browser, email)
        sign_up(other, new_email())
        stolen = other.csrf("/portal/account")
        logout = browser.post("/portal/logout", {"csrf_token": stolen})
        assert logout.status_code == 403
        assert browser.get("/portal/account").status_code == 200
        resend = browser.post("/portal/verify/resend", {"csrf_token": stolen})
        assert resend.status_code == 403
        assert len(mails_to(live, email)) == 1


def test_sign_out_ends_the_session(live: LiveDemo) -> None:
    with Browser(live.base_url) as browser:
        sign_up(browser, new_email())
        cookie = browser.session_cookie
        answer = browser.submit("/portal/account", "/portal/logout")
        assert answer.headers["location"] == "/portal/login?notice=signed_out"
        assert "You are signed out" in text_of(browser.get(answer.headers["location"]))
        assert browser.get("/portal/account").status_code == 303
    with Browser(live.base_url) as replay:
        replay.client.cookies.set("flotta_session", cookie or "")
        answer = replay.get("/portal/account")
        assert answer.status_code == 303
        assert answer.headers["location"].startswith("/portal/login?next=")


def test_the_demo_outbox_lists_mail_with_clickable_links_and_escaped_text(
    live: LiveDemo,
) -> None:
    email, earlier = new_email(), new_email()
    with Browser(live.base_url) as first:
        sign_up(first, earlier)
    with Browser(live.base_url) as browser:
        sign_up(browser, email, name="<b>Eve</b>")
        wait_for_mail(live, email)
        page = browser.get("/portal/outbox")
        assert page.status_code == 200
        assert "Hello &lt;b&gt;Eve&lt;/b&gt;," in page.text
        assert "<b>Eve</b>" not in page.text
        assert f'<a href="{live.base_url}/portal/verify?token=fev_' in page.text
        assert "printed in the server log" in text_of(page)
        assert page.text.index(email) < page.text.index(earlier)  # newest first


def test_the_outbox_is_not_found_outside_the_demo(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, secret_key="a-real-secret-key-for-tests")
    with TestClient(create_app(settings), base_url="http://127.0.0.1") as client:
        answer = client.get("/portal/outbox")
        assert answer.status_code == 404
        assert "only in the demo" in answer.text


def test_passwords_and_session_cookies_never_reach_the_log(
    live: LiveDemo, capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    email, wrong, fresh = new_email(), "a wrong guess at it", "a fresh passphrase 123"
    cookies: list[str | None] = []
    with Browser(live.base_url) as browser:
        sign_up(browser, email)
        cookies.append(browser.session_cookie)
        sign_out(browser)
        sign_in(browser, email, wrong)
        sign_in(browser, email)
        cookies.append(browser.session_cookie)
        browser.submit("/portal/forgot", "/portal/forgot", email=email)
        link = link_in(wait_for_mail(live, email, count=2)[-1].body_text, "/portal/reset")
        token = link.split("token=")[1]
        browser.submit(link, "/portal/reset", token=token, password=fresh, confirm=fresh)
        sign_in(browser, email, fresh)
        cookies.append(browser.session_cookie)
    captured = capfd.readouterr()
    server_records = [
        f"{r.name} {r.getMessage()}"
        for r in caplog.records
        if not r.name.startswith(("httpx", "httpcore"))  # the test's own client
    ]
    logs = "\n".join([captured.out, captured.err, *server_records])
    # Without an SMTP host the demo prints each mail, links included: that is how it works
    # offline. Nothing else secret may appear.
    assert "/portal/verify?token=fev_" in logs
    assert all(cookies)
    for secret in (PASSWORD, wrong, fresh, *cookies):
        assert secret not in logs
