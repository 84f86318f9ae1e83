"""The owner console: see which apps reach the account, narrow them, revoke them."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.live import LiveDemo
from tests.oauth.flow import (
    App,
    Owner,
    api,
    authorized_tokens,
    browser,
    new_owner,
    refresh,
    register_app,
)
from tests.oauth.support import claims

CONSOLE = "/portal/console"


@dataclass
class Granted:
    owner: Owner
    app: App
    tokens: dict[str, Any]
    console: httpx.Client


@pytest.fixture
def granted(live: LiveDemo) -> Iterator[Granted]:
    """A fresh owner with two cars who allowed a fresh app everything, signed in."""
    owner = new_owner(live, vehicles=2)
    app = register_app(live, name="Trip Logger")
    tokens = authorized_tokens(live, owner, app)
    with browser(live, owner) as console:
        yield Granted(owner, app, tokens, console)


def csrf(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([0-9a-f]+)"', html)
    assert found is not None
    return found.group(1)


def grant_id(html: str, app_name: str) -> str:
    section = html.split(f">{app_name}</h2>")[0]
    found = re.findall(r'id="grant-(\d+)"', section)
    assert found, f"{app_name} is not listed"
    return found[-1]


def test_the_console_needs_a_signed_in_account(live: LiveDemo) -> None:
    with browser(live) as client:
        answer = client.get(CONSOLE)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/portal/login?next=%2Fportal%2Fconsole"


def test_the_console_lists_each_app_in_plain_words(granted: Granted) -> None:
    page = granted.console.get(CONSOLE)
    assert page.status_code == 200
    assert "Trip Logger" in page.text and "app.example.com" in page.text
    assert "Vehicle commands" in page.text and "Charging" in page.text
    assert "Car 1" in page.text and granted.owner.vins[1] in page.text
    assert "Allowed since" in page.text


def test_narrowing_applies_to_the_next_request_and_to_refreshes(
    live: LiveDemo, granted: Granted
) -> None:
    page = granted.console.get(CONSOLE).text
    grant = grant_id(page, "Trip Logger")
    kept_vehicle = f"vehicle:{granted.owner.fleet_ids[0]}"
    with api(live, granted.tokens["access_token"]) as fleet:
        assert fleet.get("/api/1/vehicles").status_code == 200
        saved = granted.console.post(
            f"{CONSOLE}/{grant}",
            data={"csrf_token": csrf(page), "scope": ["user_data"], "device": [kept_vehicle]},
        )
        assert saved.status_code == 303
        listing = fleet.get("/api/1/vehicles")
        assert listing.status_code == 403
        assert listing.json()["error"] == "Unauthorized missing scopes"
        assert fleet.get("/api/1/users/me").status_code == 200
    renewed = refresh(live, granted.app, granted.tokens["refresh_token"]).json()
    assert claims(renewed["access_token"])["scp"] == ["openid", "offline_access", "user_data"]
    after = granted.console.get(saved.headers["location"]).text
    assert "keeps only what is still ticked" in after
    assert "Vehicle commands" not in after and "Car 2" not in after and "Car 1" in after


def test_revoking_ends_api_access_and_refresh_tokens(live: LiveDemo, granted: Granted) -> None:
    page = granted.console.get(CONSOLE).text
    grant = grant_id(page, "Trip Logger")
    with api(live, granted.tokens["access_token"]) as fleet:
        assert fleet.get("/api/1/vehicles").status_code == 200
        done = granted.console.post(f"{CONSOLE}/{grant}/revoke", data={"csrf_token": csrf(page)})
        assert done.status_code == 303
        answer = fleet.get("/api/1/vehicles")
    assert answer.status_code == 401
    assert "revoked" in answer.json()["error_description"]
    refused = refresh(live, granted.app, granted.tokens["refresh_token"])
    assert refused.status_code == 401 and refused.json()["error"] == "login_required"
    after = granted.console.get(done.headers["location"]).text
    assert "Access revoked" in after and "Trip Logger" not in after


def test_another_accounts_grant_is_not_found(live: LiveDemo, granted: Granted) -> None:
    grant = grant_id(granted.console.get(CONSOLE).text, "Trip Logger")
    stranger = new_owner(live)
    with browser(live, stranger) as other:
        token = csrf(other.get(CONSOLE).text)
        narrowed = other.post(f"{CONSOLE}/{grant}", data={"csrf_token": token, "scope": []})
        revoked = other.post(f"{CONSOLE}/{grant}/revoke", data={"csrf_token": token})
        missing = other.post(f"{CONSOLE}/not-a-number/revoke", data={"csrf_token": token})
    for answer in (narrowed, revoked, missing):
        assert answer.status_code == 404 and 'role="alert"' in answer.text
    with api(live, granted.tokens["access_token"]) as fleet:
        assert fleet.get("/api/1/vehicles").status_code == 200  # untouched


def test_console_forms_need_their_csrf_token(live: LiveDemo, granted: Granted) -> None:
    grant = grant_id(granted.console.get(CONSOLE).text, "Trip Logger")
    answer = granted.console.post(f"{CONSOLE}/{grant}/revoke", data={})
    assert answer.status_code == 403
    with api(live, granted.tokens["access_token"]) as fleet:
        assert fleet.get("/api/1/vehicles").status_code == 200
