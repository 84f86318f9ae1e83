"""The whole onboarding journey in Debian's Chromium, as issue 3 describes it.

A developer signs up (the mail arrives over SMTP on loopback), verifies, enrols MFA with a code
computed here, applies; the demo's admin approves in the browser; the developer reads the
credentials, uploads the command key and registers; the demo owner signs in and consents to one
car; the code is exchanged and `vehicle_data` answers for that car only.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pyotp
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.live import LiveDemo
from tests.mail.smtp_sink import Sink, smtp_sink

FIRST_CALLBACK = "http://localhost:9/first-callback"
CALLBACK = "http://localhost:9/callback"  # never reached: the browser's request is intercepted
PASSWORD = "correct horse battery staple"


@pytest.fixture
def mailed_demo(demo_factory: Callable[..., LiveDemo]) -> Iterator[tuple[LiveDemo, Sink]]:
    with smtp_sink() as (sink, port):
        demo = demo_factory(
            vehicles=2,
            mail={"smtp_host": "127.0.0.1", "smtp_port": port},
            # Nothing listens on port 9: the .well-known fetch fails fast, the upload is used.
            partner={"key_url_template": "http://127.0.0.1:9/{domain}.pem"},
        )
        yield demo, sink


def test_sign_up_to_vehicle_data(browser: Any, mailed_demo: tuple[LiveDemo, Sink]) -> None:
    demo, sink = mailed_demo
    portal = f"{demo.base_url}/portal"
    email = f"dev-{secrets.token_hex(4)}@example.com"
    developer = browser.new_context()
    developer.set_default_timeout(15_000)
    page = developer.new_page()

    # 1. Sign up, receive the mail over SMTP, verify.
    page.goto(f"{portal}/signup")
    page.fill("#email", email)
    page.fill("#full_name", "Dana Developer")
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    mail = next(m for m in sink.wait_for(1) if email in str(m["To"]))
    body = mail.get_body(preferencelist=("plain",))
    assert body is not None
    link = re.search(r"https?://\S+/portal/verify\?token=\S+", body.get_content())
    assert link is not None, body.get_content()
    page.goto(link.group(0))
    page.goto(f"{portal}/account")
    assert "verified" in page.inner_text("main").lower()

    # 2. Enrol MFA with a code computed from the secret the page shows.
    page.goto(f"{portal}/account/mfa")
    secret = page.inner_text("code.secret").replace(" ", "")
    page.fill("form[action$='/account/mfa'] #code", pyotp.TOTP(secret).now())
    page.click("form[action$='/account/mfa'] button[type=submit]")
    assert "recovery" in page.inner_text("main").lower()

    # 3. Apply; the admin approves; read the credentials.
    client_id = _apply(page, portal)
    _admin_approves(browser, demo, portal, client_id)
    page.goto(f"{portal}/apps/{client_id}")
    assert page.inner_text("#status") == "approved"
    page.click("form[action$='/secret'] button[type=submit]")
    client_secret = page.inner_text("#client-secret").strip()
    assert client_secret and page.inner_text("#client-id").strip() == client_id
    _register_partner(page, portal, demo, client_id, client_secret)
    _edit_redirect(page, portal, client_id)

    # 4. The owner runs the authorization-code flow and consents to the first car only.
    verifier = secrets.token_urlsafe(64)
    code = _owner_consents(browser, demo, client_id, verifier)

    # 5. Exchange the code and call vehicle_data with the customer's token.
    tokens = httpx.post(
        f"{demo.base_url}/oauth2/v3/token",
        data={
            "grant_type": "authorization_code",
            "client_id": client_id,
            "client_secret": client_secret,
            "code": code,
            "code_verifier": verifier,
            "redirect_uri": CALLBACK,
            "audience": demo.base_url,
        },
        timeout=10,
    )
    assert tokens.status_code == 200, tokens.text
    headers = {"Authorization": f"Bearer {tokens.json()['access_token']}"}
    first, second = demo.vins[0], demo.vins[1]
    data = httpx.get(
        f"{demo.base_url}/api/1/vehicles/{first}/vehicle_data", headers=headers, timeout=10
    )
    assert data.status_code == 200, data.text
    assert data.json()["response"]["vin"] == first
    other = httpx.get(
        f"{demo.base_url}/api/1/vehicles/{second}/vehicle_data", headers=headers, timeout=10
    )
    assert other.status_code == 404  # not chosen on the consent screen
    developer.close()


def _apply(page: Any, portal: str) -> str:
    page.goto(f"{portal}/apps/new")
    page.fill("#name", "Journey Charging Planner")
    page.fill("#description", "Plans charging around tariffs.")
    page.fill("#intended_use", "Reads charge state hourly and starts charging off-peak.")
    page.fill("#website", "https://journey.example.com")
    page.fill("#domain", "journey.example.com")
    page.fill("#redirect_uris", FIRST_CALLBACK)  # moved to CALLBACK by an edit, later
    page.fill("#allowed_origins", "https://journey.example.com")
    for scope in ("openid", "offline_access", "vehicle_device_data", "vehicle_cmds"):
        page.check(f"input[name=scopes][value={scope}]")
    page.check("input[name=client_type][value=confidential]")
    page.click("form[action$='/apps/new'] button[type=submit]")
    match = re.search(r"/portal/apps/([0-9a-f]{32})", page.url)
    assert match is not None, page.url
    assert page.inner_text("#status") == "pending"
    return match.group(1)


def _admin_approves(browser: Any, demo: LiveDemo, portal: str, client_id: str) -> None:
    admin = demo.info["developer"]
    context = browser.new_context()
    page = context.new_page()
    page.goto(f"{portal}/login")
    page.fill("#email", admin["email"])
    page.fill("#password", admin["password"])
    page.click("form[action$='/login'] button[type=submit]")
    page.fill("#code", pyotp.TOTP(admin["totp_secret"]).now())
    page.click("form[action$='/login/mfa'] button[type=submit]")
    page.goto(f"{portal}/admin/apps/{client_id}")
    page.click("form[action$='/approve'] button[type=submit]")
    page.goto(f"{portal}/admin/apps/{client_id}")
    assert page.inner_text("#status").startswith("approved")
    context.close()


def _register_partner(
    page: Any, portal: str, demo: LiveDemo, client_id: str, client_secret: str
) -> None:
    """Upload the command key in the portal, then register with a partner token."""
    key = ec.generate_private_key(ec.SECP256R1()).public_key()
    pem = key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()
    page.goto(f"{portal}/apps/{client_id}")
    page.fill("#public_key", pem)
    page.click("form[action$='/public_key'] button[type=submit]")
    point = key.public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    assert page.inner_text("#key-hex").strip() == point.hex()
    partner = httpx.post(
        f"{demo.base_url}/oauth2/v3/token",
        data={
            "grant_type": "client_credentials",
            "client_id": client_id,
            "client_secret": client_secret,
            "audience": demo.base_url,
        },
        timeout=10,
    )
    assert partner.status_code == 200, partner.text
    registered = httpx.post(
        f"{demo.base_url}/api/1/partner_accounts",
        json={"domain": "journey.example.com"},
        headers={"Authorization": f"Bearer {partner.json()['access_token']}"},
        timeout=15,
    )
    assert registered.status_code == 200, registered.text
    assert registered.json()["response"]["public_key"] == point.hex()


def _edit_redirect(page: Any, portal: str, client_id: str) -> None:
    """The approved app's redirect URI changes in the portal; the owner's flow below uses it."""
    page.goto(f"{portal}/apps/{client_id}")
    page.click("#edit-app")
    assert page.input_value("#redirect_uris") == FIRST_CALLBACK
    page.fill("#redirect_uris", CALLBACK)
    page.click("form[action$='/edit'] button[type=submit]")
    assert "Application details saved." in page.inner_text("main")
    assert page.inner_text("#client-id").strip() == client_id


def _owner_consents(browser: Any, demo: LiveDemo, client_id: str, verifier: str) -> str:
    owner = demo.info["owner"]
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    state = secrets.token_urlsafe(16)
    query = urlencode(
        {
            "response_type": "code",
            "client_id": client_id,
            "redirect_uri": CALLBACK,
            "scope": "openid offline_access vehicle_device_data",
            "state": state,
            "code_challenge": challenge.rstrip(b"=").decode(),
            "code_challenge_method": "S256",
        }
    )
    context = browser.new_context()
    landed: list[str] = []

    def catch(route: Any) -> None:
        landed.append(route.request.url)
        route.fulfill(status=200, body="signed in", content_type="text/plain")

    context.route(re.compile(r"^http://localhost:9/.*"), catch)
    page = context.new_page()
    page.goto(f"{demo.base_url}/oauth2/v3/authorize?{query}")
    page.fill("#email", owner["email"])
    page.fill("#password", owner["password"])
    page.click("form[action$='/login'] button[type=submit]")
    assert "vehicle_device_data" in page.inner_text("main")
    for box in page.query_selector_all("input[name=allow_device]"):
        box.uncheck()
    page.check(f"label:has-text('VIN {demo.vins[0]}') input[name=allow_device]")
    page.click("button[name=decision][value=allow]")
    page.wait_for_url(re.compile(r"^http://localhost:9/callback"))
    context.close()
    params = parse_qs(urlsplit(landed[-1]).query)
    assert params["state"] == [state]
    return params["code"][0]
