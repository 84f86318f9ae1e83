"""`/api/1/partner_accounts` against a live demo whose key downloads go to a loopback server.

Tesla fetches `https://<domain>/.well-known/appspecific/com.tesla.3p.public-key.pem`; TLS on
loopback would need certificates, so the demo's `partner.key_url_template` points the fetch at
a real HTTP server here, one path per domain.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from flotta.apps.public_key import MAX_PEM_BYTES
from tests.apps.keys import p256_pair
from tests.apps.support import (
    application,
    approved_app,
    issue_secret,
    make_user,
    new_email,
)
from tests.live import LiveDemo, start_live_demo

WELL_KNOWN = "/.well-known/appspecific/com.tesla.3p.public-key.pem"
REGISTER = "/api/1/partner_accounts"
PUBLIC_KEY = "/api/1/partner_accounts/public_key"


class KeyServer:
    """Serves `routes[path] = (status, headers, body)`; anything else is 404."""

    def __init__(self) -> None:
        self.routes: dict[str, tuple[int, dict[str, str], bytes]] = {}
        routes = self.routes

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                status, headers, body = routes.get(self.path, (404, {}, b"not found"))
                self.send_response(status)
                for name, value in {"Content-Length": str(len(body)), **headers}.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, domain: str) -> str:
        return f"http://127.0.0.1:{self.port}/{domain}{WELL_KNOWN}"

    def host(self, domain: str, body: bytes, status: int = 200, **headers: str) -> None:
        self.routes[f"/{domain}{WELL_KNOWN}"] = (status, headers, body)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


@pytest.fixture(scope="module")
def keys() -> Iterator[KeyServer]:
    server = KeyServer()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory, keys: KeyServer) -> Iterator[LiveDemo]:
    template = f"http://127.0.0.1:{keys.port}/{{domain}}{WELL_KNOWN}"
    live = start_live_demo(
        Path(tmp_path_factory.mktemp("partner")),
        vehicles=1,
        partner={"key_url_template": template, "key_fetch_timeout_s": 3},
    )
    try:
        yield live
    finally:
        live.stop()


class Partner:
    """An approved app of a fresh developer and a partner token from the token endpoint."""

    def __init__(self, demo: LiveDemo, **changes: Any) -> None:
        email = new_email("partner")
        make_user(demo, email)
        self.app = approved_app(demo, email, **changes)
        secret = issue_secret(demo, self.app.client_id)
        form = {
            "grant_type": "client_credentials",
            "client_id": self.app.client_id,
            "client_secret": secret,
            "audience": demo.base_url,
        }
        issued = httpx.post(f"{demo.base_url}/oauth2/v3/token", data=form, timeout=10)
        assert issued.status_code == 200, issued.text
        headers = {"Authorization": f"Bearer {issued.json()['access_token']}"}
        self.http = httpx.Client(base_url=demo.base_url, headers=headers, timeout=15)

    def register(self, domain: str) -> httpx.Response:
        return self.http.post(REGISTER, json={"domain": domain})


@pytest.fixture
def make_partner(demo: LiveDemo) -> Iterator[Callable[..., Partner]]:
    """Make partners (apps with tokens); their HTTP clients close after the test."""
    made: list[Partner] = []

    def make(**changes: Any) -> Partner:
        made.append(Partner(demo, **changes))
        return made[-1]

    try:
        yield make
    finally:
        for one in made:
            one.http.close()


def refused(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert body["response"] is None
    return body


def test_registration_fetches_the_key_and_is_idempotent(
    demo: LiveDemo, keys: KeyServer, make_partner: Callable[..., Partner]
) -> None:
    partner = make_partner(
        domain="fleet.alpha.example", allowed_origins="https://www.alpha.example"
    )
    pem, point = p256_pair()
    keys.host("fleet.alpha.example", pem.encode())
    first = partner.register("fleet.alpha.example")
    assert first.status_code == 200, first.text
    account = first.json()["response"]
    assert account == {
        "client_id": partner.app.client_id,
        "name": "Charge Planner",
        "description": "Plans charging around tariffs.",
        "domain": "fleet.alpha.example",
        "ca": None,
        "created_at": account["created_at"],
        "updated_at": account["updated_at"],
        "enterprise_tier": "free",
        "public_key": point,
    }
    assert account["created_at"].endswith("Z") and account["updated_at"] >= account["created_at"]
    assert application(demo, partner.app.client_id).partner_registered_at is not None
    again = partner.register("fleet.alpha.example")
    assert again.status_code == 200
    assert set(again.json()["response"]) == set(account)
    assert again.json()["response"]["updated_at"] >= account["updated_at"]
    looked_up = partner.http.get(PUBLIC_KEY, params={"domain": "fleet.alpha.example"})
    assert looked_up.status_code == 200 and looked_up.json() == {"response": {"public_key": point}}


def test_a_sibling_of_an_allowed_origin_may_register(
    demo: LiveDemo, keys: KeyServer, make_partner: Callable[..., Partner]
) -> None:
    partner = make_partner(domain="app.beta.example", allowed_origins="https://www.beta.example")
    pem, point = p256_pair()
    keys.host("123.beta.example", pem.encode())
    registered = partner.register("123.beta.example")
    assert registered.status_code == 200, registered.text
    assert registered.json()["response"]["domain"] == "123.beta.example"
    assert registered.json()["response"]["public_key"] == point


def test_domain_rules(
    demo: LiveDemo, keys: KeyServer, make_partner: Callable[..., Partner]
) -> None:
    partner = make_partner(domain="app.gamma.example", allowed_origins="https://www.gamma.example")
    other_root = refused(partner.register("app.evil.example"), 412)
    assert other_root["error"].startswith("Root domain evil.example must match the root domain")
    assert "gamma.example" in other_root["error"]
    for bad in ("https://app.gamma.example", "App.Gamma.example", "gamma"):
        invalid = refused(partner.register(bad), 400)
        assert invalid["error"].startswith(
            f"Invalid domain: {bad}. Ensure that domain is lowercase"
        )
    missing = refused(partner.http.post(REGISTER, json={}), 400)
    assert "domain" in missing["error_description"]
    assert application(demo, partner.app.client_id).partner_registered_at is None


def test_a_domain_registered_by_another_app_is_taken(
    demo: LiveDemo, keys: KeyServer, make_partner: Callable[..., Partner]
) -> None:
    origins = "https://www.delta.example"
    first = make_partner(domain="app.delta.example", allowed_origins=origins)
    second = make_partner(domain="app.delta.example", allowed_origins=origins)
    keys.host("app.delta.example", p256_pair()[0].encode())
    assert first.register("app.delta.example").status_code == 200
    taken = refused(second.register("app.delta.example"), 422)
    assert taken["error"] == "Validation failed: Domain has already been taken"


def test_uploaded_key_is_the_fallback_and_no_key_is_a_clear_error(
    demo: LiveDemo, keys: KeyServer, make_partner: Callable[..., Partner]
) -> None:
    partner = make_partner(domain="app.eps.example", allowed_origins="https://www.eps.example")
    failed = refused(partner.register("app.eps.example"), 400)
    url = keys.url("app.eps.example")
    assert failed["error"] == f"Public key download failed for {url}, error: HTTP status 404"
    assert f"/portal/apps/{partner.app.client_id}" in failed["error_description"]
    assert application(demo, partner.app.client_id).partner_registered_at is None

    _, point = p256_pair()
    set_uploaded_key(demo, partner.app.client_id, point)
    registered = partner.register("app.eps.example")
    assert registered.status_code == 200, registered.text
    assert registered.json()["response"]["public_key"] == point


def test_oversized_keys_and_foreign_redirects_are_refused(
    demo: LiveDemo, keys: KeyServer, make_partner: Callable[..., Partner]
) -> None:
    partner = make_partner(domain="app.zeta.example", allowed_origins="https://www.zeta.example")
    keys.host("app.zeta.example", b"-" * (MAX_PEM_BYTES + 10))
    large = refused(partner.register("app.zeta.example"), 400)
    assert large["error"].endswith("error: too large")
    keys.host("app.zeta.example", b"", 302, Location="http://localhost:9/elsewhere.pem")
    moved = refused(partner.register("app.zeta.example"), 400)
    assert moved["error"].endswith("error: redirected to another host")


def test_partner_endpoints_need_a_partner_token(demo: LiveDemo) -> None:
    owner = {"Authorization": f"Bearer {demo.token}"}
    for method, path, extra in (
        ("POST", REGISTER, {"json": {"domain": "app.example.com"}}),
        ("GET", PUBLIC_KEY, {"params": {"domain": "app.example.com"}}),
    ):
        response = httpx.request(
            method, f"{demo.base_url}{path}", headers=owner, timeout=10, **extra
        )
        body = refused(response, 403)
        assert (
            body["error_description"] == "this endpoint needs a partner token (client_credentials)"
        )
        anonymous = httpx.request(method, f"{demo.base_url}{path}", timeout=10, **extra)
        assert anonymous.status_code == 401


def test_public_key_of_an_unknown_domain_is_404(
    demo: LiveDemo, make_partner: Callable[..., Partner]
) -> None:
    partner = make_partner(domain="app.eta.example", allowed_origins="https://www.eta.example")
    unknown = refused(partner.http.get(PUBLIC_KEY, params={"domain": "nobody.example"}), 404)
    assert "nobody.example" in unknown["error_description"]
    assert refused(partner.http.get(PUBLIC_KEY), 400)["error"] == "invalid_request"


def set_uploaded_key(demo: LiveDemo, client_id: str, point: str) -> None:
    runtime = demo.handle.runtime

    async def store() -> None:
        from flotta.apps.repository import AppRepository

        async with runtime.sessions() as db, db.begin():
            app = await AppRepository(db).by_client_id(client_id)
            assert app is not None
            app.public_key = point

    demo.call(store())
