"""Developer and operator pages over real HTTP: apply, review, credentials, public key."""

from __future__ import annotations

import html
import re

import httpx

from flotta.oauth.service import hmac_hash
from tests.apps.keys import p256_pair, p384_pem
from tests.apps.support import (
    GOOD_FORM,
    application,
    browser,
    client_id_of,
    csrf_of,
    developer,
    new_email,
    outbox,
    post_form,
    submit,
)
from tests.live import LiveDemo

TOKEN_PATH = "/oauth2/v3/token"


def text_of(response: httpx.Response) -> str:
    """The page's text as a reader sees it (tags dropped, entities decoded, spaces collapsed)."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", response.text)).split())


def partner_token(live: LiveDemo, client_id: str, secret: str) -> httpx.Response:
    form = {
        "grant_type": "client_credentials",
        "client_id": client_id,
        "client_secret": secret,
        "audience": live.base_url,
    }
    return httpx.post(f"{live.base_url}{TOKEN_PATH}", data=form, timeout=10)


def admin(live: LiveDemo) -> httpx.Client:
    _, client = developer(live, admin=True)
    return client


def test_signed_out_visitors_get_a_landing_page_and_apps_need_sign_in(live: LiveDemo) -> None:
    with browser(live) as visitor:
        landing = visitor.get("/portal/")
        assert landing.status_code == 200
        assert 'href="/portal/login"' in landing.text and 'href="/portal/signup"' in landing.text
        assert "Developer dashboard" not in landing.text
        apps = visitor.get("/portal/apps/new")
        assert apps.status_code == 303
        assert apps.headers["location"] == "/portal/login?next=%2Fportal%2Fapps%2Fnew"


def test_dashboard_shows_the_account_and_the_next_step(live: LiveDemo) -> None:
    _, unverified = developer(live, verified=False, mfa=False)
    with unverified:
        page = text_of(unverified.get("/portal/"))
        assert "not verified yet" in page and "Two-factor authentication: off" in page
        assert "Next step Verify your e-mail address" in page
    _, no_mfa = developer(live, mfa=False)
    with no_mfa:
        page = no_mfa.get("/portal/")
        assert 'href="/portal/account/mfa">Set up two-factor authentication' in page.text
    _, ready = developer(live)
    with ready:
        assert "Apply for your first application." in text_of(ready.get("/portal/"))
        client_id_of(submit(ready))
        page = text_of(ready.get("/portal/"))
        assert "Charge Planner pending" in page
        assert "Charge Planner is waiting for review" in page


def test_without_mfa_or_verified_email_the_form_is_refused(live: LiveDemo) -> None:
    for flags, says in (
        ({"mfa": False}, "turn on two-factor authentication"),
        ({"verified": False}, "verify your e-mail address"),
    ):
        _, client = developer(live, **flags)
        with client:
            shown = client.get("/portal/apps/new")
            assert shown.status_code == 403
            assert says in text_of(shown)
            assert 'href="/portal/account/mfa"' in shown.text
            assert 'name="redirect_uris"' not in shown.text  # no form to fill in
            posted = client.post(
                "/portal/apps/new", data={**GOOD_FORM, "csrf_token": csrf_of(shown.text)}
            )
            assert posted.status_code == 403 and says in text_of(posted)
            assert "You have no applications yet." in client.get("/portal/apps").text


def test_every_invalid_field_is_named_and_what_was_typed_is_kept(live: LiveDemo) -> None:
    _, client = developer(live)
    with client:
        refused = submit(
            client,
            name="",
            website="http://planner.example.com",
            domain="https://api.example.com",
            redirect_uris="http://planner.example.com/cb",
            allowed_origins="https://planner.example.com/app",
            scopes=[],
            client_type="sideways",
        )
        assert refused.status_code == 400
        errors = dict(
            re.findall(r'<p class="error" id="([a-z_]+)-error">([^<]*)</p>', refused.text)
        )
        assert set(errors) == {
            "name",
            "website",
            "domain",
            "redirect_uris",
            "allowed_origins",
            "scopes",
            "client_type",
        }
        assert "use https" in errors["redirect_uris"]
        assert "without a path" in html.unescape(errors["allowed_origins"])
        assert 'value="http://planner.example.com"' in refused.text
        assert "https://planner.example.com/app</textarea>" in refused.text
        assert 'role="alert"' in refused.text and "Please correct 7 fields" in refused.text
        mismatch = submit(client, domain="api.other.org")
        assert mismatch.status_code == 400
        assert "must match the root domain of one of the allowed origins" in mismatch.text
        assert "You have no applications yet." in client.get("/portal/apps").text


def test_review_approve_secret_once_token_and_rotation(live: LiveDemo) -> None:
    email, dev = developer(live)
    with dev, admin(live) as operator:
        client_id = client_id_of(submit(dev))
        page = text_of(dev.get(f"/portal/apps/{client_id}?notice=submitted"))
        assert "Application submitted" in page and "Status: pending" in page
        assert "Charge Planner pending" in text_of(dev.get("/portal/apps"))

        queue = operator.get("/portal/admin/apps")
        assert queue.status_code == 200 and f"/portal/admin/apps/{client_id}" in queue.text
        forged = operator.post(f"/portal/admin/apps/{client_id}/approve", data={"note": "ok"})
        assert forged.status_code == 403  # no CSRF token
        assert application(live, client_id).status == "pending"
        review = f"/portal/admin/apps/{client_id}"
        approved = post_form(operator, review, f"{review}/approve", {"note": "Welcome aboard"})
        assert approved.status_code == 303
        assert "Charge Planner was approved" in text_of(operator.get(approved.headers["location"]))

        mails = outbox(live, email)
        assert [m.subject for m in mails] == [
            'Your Flotta application "Charge Planner" was approved'
        ]
        assert client_id in mails[0].body_text and "Welcome aboard" in mails[0].body_text

        detail = f"/portal/apps/{client_id}"
        assert "Generate client secret" in dev.get(detail).text
        shown = post_form(dev, detail, f"{detail}/secret", {})
        assert shown.status_code == 200 and shown.headers["cache-control"] == "no-store"
        assert "it will not be shown again" in text_of(shown)
        secret = re.search(r'id="client-secret">([^<]+)<', shown.text)
        assert secret is not None
        first = secret.group(1)
        assert first not in dev.get(detail).text and "Rotate secret" in dev.get(detail).text
        stored = application(live, client_id)
        assert stored.secret_hash == hmac_hash(live.handle.runtime.settings.secret_key, first)
        assert_not_in_database(live, first)

        token = partner_token(live, client_id, first)
        assert token.status_code == 200, token.text
        rotated = post_form(dev, detail, f"{detail}/secret", {})
        second = re.search(r'id="client-secret">([^<]+)<', rotated.text)
        assert second is not None and second.group(1) != first
        assert "The previous secret has stopped working." in text_of(rotated)
        old = partner_token(live, client_id, first)
        assert old.status_code == 400 and old.json()["error"] == "unauthorized_client"
        assert partner_token(live, client_id, second.group(1)).status_code == 200


def assert_not_in_database(live: LiveDemo, secret: str) -> None:
    """The plain secret is in no file of the database (main file and write-ahead log)."""
    files = list(live.data_dir.glob("flotta.db*"))
    assert files
    for path in files:
        assert secret.encode() not in path.read_bytes(), path


def test_reject_needs_a_reason_which_the_developer_sees(live: LiveDemo) -> None:
    email, dev = developer(live)
    with dev, admin(live) as operator:
        client_id = client_id_of(submit(dev))
        review = f"/portal/admin/apps/{client_id}"
        empty = post_form(operator, review, f"{review}/reject", {"reason": "   "})
        assert empty.status_code == 400 and 'id="reason-error"' in empty.text
        assert application(live, client_id).status == "pending"
        reason = "Intended use is too vague: say which data you read and how often."
        rejected = post_form(operator, review, f"{review}/reject", {"reason": reason})
        assert rejected.status_code == 303
        page = text_of(dev.get(f"/portal/apps/{client_id}"))
        assert "Status: rejected" in page and reason in page
        mails = outbox(live, email)
        assert len(mails) == 1 and "not approved" in mails[0].subject
        assert reason in mails[0].body_text
        again = post_form(operator, review, f"{review}/approve", {})
        assert again.status_code == 409 and "already rejected" in text_of(again)
        assert application(live, client_id).status == "rejected"
        assert len(outbox(live, email)) == 1


def test_non_admins_get_403_on_admin_pages(live: LiveDemo) -> None:
    _, dev = developer(live)
    with dev:
        client_id = client_id_of(submit(dev))
        assert dev.get("/portal/admin/apps").status_code == 403
        review = dev.get(f"/portal/admin/apps/{client_id}")
        assert review.status_code == 403 and "for operators" in text_of(review)
        token = csrf_of(dev.get("/portal/apps").text)
        approve = dev.post(f"/portal/admin/apps/{client_id}/approve", data={"csrf_token": token})
        assert approve.status_code == 403
        assert application(live, client_id).status == "pending"


def test_a_developer_cannot_see_another_developers_app(live: LiveDemo) -> None:
    _, alice = developer(live)
    _, bob = developer(live)
    with alice, bob:
        client_id = client_id_of(submit(alice, name="Alice's Secret App"))
        assert bob.get(f"/portal/apps/{client_id}").status_code == 404
        token = csrf_of(bob.get("/portal/apps").text)
        for action in ("secret", "public_key"):
            posted = bob.post(
                f"/portal/apps/{client_id}/{action}",
                data={"csrf_token": token, "public_key": p256_pair()[0]},
            )
            assert posted.status_code == 404
        assert "Alice's Secret App" not in bob.get("/portal/apps").text
        assert application(live, client_id).public_key is None


def test_public_key_upload_is_validated_and_shown_with_its_fingerprint(live: LiveDemo) -> None:
    _, dev = developer(live)
    with dev:
        client_id = client_id_of(submit(dev))
        detail = f"/portal/apps/{client_id}"
        wrong = p384_pem()
        refused = post_form(dev, detail, f"{detail}/public_key", {"public_key": wrong})
        assert refused.status_code == 400
        assert "vehicles accept only secp256r1" in text_of(refused)
        assert wrong.strip() in html.unescape(refused.text)
        pem, point = p256_pair()
        saved = post_form(dev, detail, f"{detail}/public_key", {"public_key": pem})
        assert saved.status_code == 303
        page = dev.get(saved.headers["location"])
        assert "Public key saved." in page.text and point in page.text
        assert re.search(r'id="key-fingerprint">([0-9a-f]{4} ){15}[0-9a-f]{4}<', page.text)
        assert application(live, client_id).public_key == point


def test_new_accounts_see_their_email_on_the_admin_queue(live: LiveDemo) -> None:
    email = new_email("queue")
    from tests.apps.support import make_user

    make_user(live, email)
    with browser(live, email) as dev, admin(live) as operator:
        client_id = client_id_of(submit(dev, name="Queue Probe"))
        queue = operator.get("/portal/admin/apps?status=pending")
        row = re.search(
            rf"{client_id}\">Queue Probe</a></td>\s*<td>pending</td>\s*<td>([^<]+)<", queue.text
        )
        assert row is not None and row.group(1) == email
        detail = text_of(operator.get(f"/portal/admin/apps/{client_id}"))
        assert (
            GOOD_FORM["intended_use"] in detail and "https://planner.example.com/callback" in detail
        )
