"""Password reset by e-mail: single-use link, sessions ended, refresh tokens revoked."""

from __future__ import annotations

from collections.abc import Callable

from tests.live import LiveDemo
from tests.oauth.support import CODE_REDIRECT, issue_code, issue_family, post_token
from tests.portal.account_support import (
    PASSWORD,
    Browser,
    age_links,
    expire_links,
    link_in,
    mails_to,
    new_email,
    sign_in,
    sign_up,
    text_of,
    wait_for_mail,
)

OWNER = "owner@flotta.demo"


def reset_through_mail(live: LiveDemo, browser: Browser, email: str, password: str) -> str:
    """Ask for a link, follow it and set `password`; returns the link."""
    age_links(live, email)
    before = len(mails_to(live, email))
    asked = browser.submit("/portal/forgot", "/portal/forgot", email=email)
    assert asked.status_code == 200
    mail = wait_for_mail(live, email, count=before + 1)[-1]
    assert mail.subject == "Reset your Flotta password"
    link = link_in(mail.body_text, "/portal/reset")
    form = browser.get(link)
    assert form.status_code == 200
    assert form.headers["referrer-policy"] == "no-referrer"
    token = link.split("token=")[1]
    assert token.startswith("frs_")
    done = browser.submit(link, "/portal/reset", token=token, password=password, confirm=password)
    assert done.status_code == 303, text_of(done)
    assert done.headers["location"] == "/portal/login?notice=password_changed"
    return link


def test_reset_signs_out_everywhere_and_revokes_app_refresh_tokens(
    demo_factory: Callable[..., LiveDemo],
) -> None:
    demo = demo_factory(vehicles=0)
    first, second = "first passphrase here", "second passphrase here"
    with Browser(demo.base_url) as laptop, Browser(demo.base_url) as phone:
        # The demo owner has no password until a reset gives it one.
        reset_through_mail(demo, laptop, OWNER, first)
        assert sign_in(phone, OWNER, first).status_code == 303
        assert phone.get("/portal/account").status_code == 200
        refresh_token = issue_family(demo)
        code = issue_code(demo)  # consented to, not exchanged yet

        link = reset_through_mail(demo, laptop, OWNER, second)

        assert phone.get("/portal/account").status_code == 303  # signed out
        refused = sign_in(laptop, OWNER, first)
        assert refused.status_code == 400
        assert sign_in(laptop, OWNER, second).status_code == 303
        used = laptop.get(link)
        assert used.status_code == 400
        assert "already used" in text_of(used)
    answer = post_token(
        demo,
        grant_type="refresh_token",
        client_id=str(demo.info["client_id"]),
        refresh_token=refresh_token,
    )
    assert answer.status_code == 401
    assert answer.json()["error"] == "login_required"
    # A code from before the reset would start a refresh family that outlives it.
    exchanged = post_token(
        demo,
        grant_type="authorization_code",
        client_id=str(demo.info["client_id"]),
        client_secret=str(demo.info["client_secret"]),
        code=code,
        redirect_uri=CODE_REDIRECT,
    )
    assert exchanged.status_code == 400 and exchanged.json()["error"] == "invalid_auth_code"
    changed = wait_for_mail(demo, OWNER, count=4)[-1]
    assert changed.subject == "Your Flotta password was changed"


def test_forgot_answers_the_same_for_unknown_addresses(live: LiveDemo) -> None:
    known, unknown = new_email(), new_email()
    with Browser(live.base_url) as owner:
        sign_up(owner, known)
    with Browser(live.base_url) as browser:
        pages = [
            text_of(browser.submit("/portal/forgot", "/portal/forgot", email=address))
            for address in (known, unknown)
        ]
    assert pages[0].replace(known, "X") == pages[1].replace(unknown, "X")
    assert "If an account exists for" in pages[0]
    wait_for_mail(live, known, count=2)
    assert mails_to(live, unknown) == []


def test_expired_or_forged_reset_links_are_refused(live: LiveDemo) -> None:
    email = new_email()
    with Browser(live.base_url) as browser:
        sign_up(browser, email)
        browser.submit("/portal/forgot", "/portal/forgot", email=email)
        link = link_in(wait_for_mail(live, email, count=2)[-1].body_text, "/portal/reset")
        forged = browser.get("/portal/reset", token="frs_" + "A" * 43)
        assert forged.status_code == 400
        assert "not valid" in text_of(forged)
        expire_links(live, email)
        expired = browser.get(link)
        assert expired.status_code == 400
        assert "expired" in text_of(expired)
        token = link.split("token=")[1]
        posted = browser.submit(
            "/portal/forgot", "/portal/reset", token=token, password="x" * 20, confirm="x" * 20
        )
        assert posted.status_code == 400
        assert "expired or was already used" in text_of(posted)
    with Browser(live.base_url) as browser:
        assert sign_in(browser, email, PASSWORD).status_code == 303


def test_reset_refuses_a_weak_or_mistyped_password_and_keeps_the_link(live: LiveDemo) -> None:
    email = new_email()
    with Browser(live.base_url) as browser:
        sign_up(browser, email)
        browser.submit("/portal/forgot", "/portal/forgot", email=email)
        link = link_in(wait_for_mail(live, email, count=2)[-1].body_text, "/portal/reset")
        token = link.split("token=")[1]
        short = browser.submit(
            link, "/portal/reset", token=token, password="short", confirm="short"
        )
        assert short.status_code == 400
        assert "at least 12 characters" in text_of(short)
        differ = browser.submit(
            link, "/portal/reset", token=token, password="x" * 20, confirm="y" * 20
        )
        assert "two passwords differ" in text_of(differ)
        assert browser.get(link).status_code == 200  # still usable


def test_a_signed_in_owner_changes_the_password_given_the_current_one(
    demo_factory: Callable[..., LiveDemo],
) -> None:
    demo = demo_factory(vehicles=0)
    first, second = "first passphrase here", "a brand new passphrase"
    with Browser(demo.base_url) as laptop, Browser(demo.base_url) as phone:
        reset_through_mail(demo, laptop, OWNER, first)
        assert sign_in(laptop, OWNER, first).status_code == 303
        assert sign_in(phone, OWNER, first).status_code == 303
        refresh_token = issue_family(demo)
        page = "/portal/account/password"

        wrong = laptop.submit(page, page, current="not it", password=second, confirm=second)
        differ = laptop.submit(page, page, current=first, password=second, confirm=second + "!")
        short = laptop.submit(page, page, current=first, password="short", confirm="short")
        assert [r.status_code for r in (wrong, differ, short)] == [400, 400, 400]
        assert "current password is not right" in text_of(wrong)
        assert "differ" in text_of(differ)
        assert "at least 12 characters" in text_of(short)
        assert phone.get("/portal/account").status_code == 200  # nothing changed yet

        done = laptop.submit(page, page, current=first, password=second, confirm=second)
        assert done.status_code == 303
        assert done.headers["location"] == "/portal/login?notice=password_changed"
        assert phone.get("/portal/account").status_code == 303  # signed out everywhere
        assert laptop.get("/portal/account").status_code == 303
        assert sign_in(laptop, OWNER, first).status_code == 400
        assert sign_in(laptop, OWNER, second).status_code == 303
    answer = post_token(
        demo,
        grant_type="refresh_token",
        client_id=str(demo.info["client_id"]),
        refresh_token=refresh_token,
    )
    assert answer.status_code == 401 and answer.json()["error"] == "login_required"
    assert wait_for_mail(demo, OWNER, count=3)[-1].subject == "Your Flotta password was changed"
