"""Helpers of the authorization-code tests: owners, apps, signed-in browsers, the consent form.

Everything runs against the live demo over real HTTP; records are created on the server's own
event loop (`live.call`), as a sign-up or an app approval would leave them.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx

from flotta.accounts.repository import UserRepository
from flotta.accounts.sessions import STAGE_FULL
from flotta.auth.scopes import OWNER_SCOPES
from flotta.devices.repository import VehicleRepository
from flotta.devices.service import ensure_owner, provision_vehicle
from flotta.oauth.grants import oauth_service
from flotta.oauth.repository import OAuthRepository
from flotta.oauth.service import hmac_hash
from flotta.portal.web import SESSION_COOKIE, session_service
from flotta.sim.vehicle_models import get_model, make_vin
from tests.live import LiveDemo

AUTHORIZE = "/oauth2/v3/authorize"
TOKEN = "/oauth2/v3/token"
CALLBACK = "https://app.example.com/callback"
DEMO_OWNER = "owner@flotta.demo"


@dataclass(frozen=True)
class Owner:
    user_id: int
    subject: str
    email: str
    vins: list[str]
    fleet_ids: list[int]


@dataclass(frozen=True)
class App:
    client_id: str
    secret: str | None
    redirect_uri: str
    pk: int


@dataclass
class Pkce:
    verifier: str = field(default_factory=lambda: secrets.token_urlsafe(48))

    @property
    def challenge(self) -> str:
        digest = hashlib.sha256(self.verifier.encode()).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def new_owner(live: LiveDemo, vehicles: int = 0, email: str | None = None) -> Owner:
    """An account (the demo owner when `email` is DEMO_OWNER) with `vehicles` new cars."""
    runtime = live.handle.runtime
    address = email or f"owner-{uuid.uuid4().hex[:10]}@example.com"

    async def make() -> Owner:
        async with runtime.sessions() as s, s.begin():
            user = await ensure_owner(s, address, "Olivia Owner", runtime.clock)
            repo = VehicleRepository(s)
            vins, ids = [], []
            for _ in range(vehicles):
                vin = make_vin(get_model("model3_lr"), secrets.randbelow(800_000) + 200_000)
                while await repo.by_vin(vin) is not None:
                    vin = make_vin(get_model("model3_lr"), secrets.randbelow(800_000) + 200_000)
                made = await provision_vehicle(
                    s,
                    owner=user,
                    vin=vin,
                    model="model3_lr",
                    display_name=f"Car {len(vins) + 1}",
                    option_codes="",
                    config={},
                    secret_key=runtime.settings.secret_key,
                    clock=runtime.clock,
                )
                vins.append(vin)
                ids.append(made.vehicle.id)
            if address == DEMO_OWNER:
                owned = await repo.owned_by(user.id)
                vins, ids = [v.vin for v in owned], [v.id for v in owned]
            return Owner(user.id, user.uuid, user.email, vins, ids)

    owner = live.call(make())
    runtime.directory.forget()
    return owner


def browser(live: LiveDemo, owner: Owner | None = None) -> httpx.Client:
    """An httpx client (no redirects followed), signed in as `owner` when given."""
    client = httpx.Client(base_url=live.base_url, timeout=15, follow_redirects=False)
    if owner is not None:
        runtime = live.handle.runtime

        async def start() -> str:
            async with runtime.sessions() as s, s.begin():
                user = await UserRepository(s).get(owner.user_id)
                assert user is not None
                return await session_service(s, runtime).start(user, STAGE_FULL)

        client.cookies.set(SESSION_COOKIE, live.call(start()))
    return client


def register_app(
    live: LiveDemo,
    *,
    confidential: bool = True,
    redirect_uris: list[str] | None = None,
    scopes: list[str] | None = None,
    partner_registered: bool = True,
    status: str = "approved",
    name: str = "Charge Planner",
) -> App:
    """An approved third-party app, registered for partner access unless told otherwise."""
    runtime = live.handle.runtime
    uris = redirect_uris or [CALLBACK]

    async def make() -> App:
        async with runtime.sessions() as s, s.begin():
            client, secret = await oauth_service(s, runtime).register_client(
                name=name,
                owner_id=None,
                confidential=confidential,
                scopes=scopes or OWNER_SCOPES,
                redirect_uris=uris,
            )
            client.status = status
            client.website = "https://app.example.com"
            client.domain = "app.example.com"
            if partner_registered:
                client.partner_registered_at = runtime.clock.now()
            return App(client.client_id, secret, uris[0], client.id)

    return live.call(make())


def authorize_params(app: App, pkce: Pkce | None = None, **extra: str) -> dict[str, str]:
    params = {
        "response_type": "code",
        "client_id": app.client_id,
        "redirect_uri": app.redirect_uri,
        "scope": " ".join(OWNER_SCOPES),
        "state": secrets.token_urlsafe(12),
    }
    if pkce is not None:
        params |= {"code_challenge": pkce.challenge, "code_challenge_method": "S256"}
    params.update(extra)
    return {k: v for k, v in params.items() if v is not None}


def authorize_url(params: dict[str, str]) -> str:
    return f"{AUTHORIZE}?{urlencode(params)}"


class _Form(HTMLParser):
    """The consent form's inputs: hidden fields and checkboxes with their state."""

    def __init__(self) -> None:
        super().__init__()
        self.inputs: list[dict[str, str | None]] = []
        self.in_form = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "form" and found.get("action") == AUTHORIZE:
            self.in_form = True
        elif tag == "input" and self.in_form:
            self.inputs.append(found)

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self.in_form = False


def consent_inputs(html: str) -> list[dict[str, str | None]]:
    parser = _Form()
    parser.feed(html)
    assert parser.inputs, "no consent form on the page"
    return parser.inputs


def checkboxes(html: str, name: str) -> dict[str, dict[str, str | None]]:
    """Enabled checkboxes named `name`, by value."""
    return {
        str(i["value"]): i
        for i in consent_inputs(html)
        if i.get("type") == "checkbox" and i.get("name") == name
    }


def consent_form(
    html: str,
    decision: str = "allow",
    scopes: set[str] | None = None,
    devices: set[str] | None = None,
) -> dict[str, list[str]]:
    """What a browser posts: hidden fields, then the ticked boxes (`None`: as pre-checked)."""
    data: list[tuple[str, str]] = []
    for field_ in consent_inputs(html):
        name, value, kind = field_.get("name"), field_.get("value") or "", field_.get("type")
        if name is None:
            continue
        if kind == "hidden":
            data.append((name, value))
        elif kind == "checkbox":
            wanted = scopes if name == "allow_scope" else devices
            ticked = "checked" in field_ if wanted is None else value in wanted
            if ticked:
                data.append((name, value))
    data.append(("decision", decision))
    form: dict[str, list[str]] = {}
    for name, value in data:
        form.setdefault(name, []).append(value)
    return form


def follow_consent(client: httpx.Client, params: dict[str, str], **choice: Any) -> httpx.Response:
    """GET the authorize URL and, when the consent page shows, post the form."""
    page = client.get(authorize_url(params))
    if page.status_code != 200:
        return page
    return client.post(AUTHORIZE, data=consent_form(page.text, **choice))


def redirect_query(response: httpx.Response) -> dict[str, str]:
    """The parameters of a redirect to the app (every value once)."""
    assert response.status_code in (302, 303), response.text[:500]
    location = response.headers["location"]
    query = parse_qs(urlsplit(location).query, keep_blank_values=True)
    return {k: v[0] for k, v in query.items()}


def exchange(
    live: LiveDemo, app: App, code: str, pkce: Pkce | None, **extra: str
) -> httpx.Response:
    """`grant_type=authorization_code` as an app's backend sends it."""
    form = {
        "grant_type": "authorization_code",
        "client_id": app.client_id,
        "code": code,
        "redirect_uri": app.redirect_uri,
        "audience": live.base_url,
    }
    if app.secret is not None:
        form["client_secret"] = app.secret
    if pkce is not None:
        form["code_verifier"] = pkce.verifier
    form.update(extra)
    return httpx.post(
        f"{live.base_url}{TOKEN}", data={k: v for k, v in form.items() if v}, timeout=15
    )


def authorized_tokens(live: LiveDemo, owner: Owner, app: App, **choice: Any) -> dict[str, Any]:
    """Consent (optionally choosing scopes/devices) and exchange: the token response."""
    pkce = Pkce()
    with browser(live, owner) as client:
        code = redirect_query(follow_consent(client, authorize_params(app, pkce), **choice))["code"]
    response = exchange(live, app, code, pkce)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def api(live: LiveDemo, token: str) -> httpx.Client:
    headers = {"Authorization": f"Bearer {token}"}
    return httpx.Client(base_url=live.base_url, headers=headers, timeout=15)


def refresh(live: LiveDemo, app: App, token: str) -> httpx.Response:
    form = {"grant_type": "refresh_token", "client_id": app.client_id, "refresh_token": token}
    return httpx.post(f"{live.base_url}{TOKEN}", data=form, timeout=15)


def expire_code(live: LiveDemo, code: str) -> None:
    """Move a code's expiry into the past (on the database)."""
    runtime = live.handle.runtime

    async def change() -> None:
        async with runtime.sessions() as s, s.begin():
            row = await OAuthRepository(s).code_by_hash(
                hmac_hash(runtime.settings.secret_key, code)
            )
            assert row is not None
            row.expires_at = runtime.clock.now() - timedelta(seconds=1)

    live.call(change())
