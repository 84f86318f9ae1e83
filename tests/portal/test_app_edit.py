"""Editing an application's details after submitting it: the changes apply at once to the same
client ID (an approved app's new redirect URI is accepted by /authorize, the old one no longer
is); what owners and partner registration rely on stays as submitted; a bad edit changes
nothing and names every problem; only the owner edits, and a rejected application is final."""

from __future__ import annotations

import re
from collections.abc import Callable
from urllib.parse import urlencode

import httpx
from sqlalchemy import select

from flotta.oauth.models import OAuthClient
from tests.apps.support import (
    GOOD_FORM,
    application,
    approved_app,
    browser,
    client_id_of,
    csrf_of,
    developer,
    make_user,
    new_email,
    post_form,
    submit,
)
from tests.live import LiveDemo
from tests.portal.test_app_pages import admin, text_of

AUTHORIZE = "/oauth2/v3/authorize"
OLD_CALLBACK = "https://planner.example.com/callback"
NEW_CALLBACK = "https://planner.example.com/oauth/done"


def mark_registered(live: LiveDemo, client_id: str) -> None:
    """As a partner registration of the app's domain leaves it."""
    runtime = live.handle.runtime

    async def mark() -> None:
        async with runtime.sessions() as db, db.begin():
            app = await db.scalar(select(OAuthClient).where(OAuthClient.client_id == client_id))
            assert app is not None
            app.partner_registered_at = runtime.clock.now()

    live.call(mark())


def authorize(live: LiveDemo, client_id: str, redirect_uri: str) -> httpx.Response:
    params = {
        "client_id": client_id,
        "redirect_uri": redirect_uri,
        "response_type": "code",
        "scope": "openid vehicle_device_data",
        "state": "s1",
    }
    return httpx.get(f"{live.base_url}{AUTHORIZE}?{urlencode(params)}", timeout=10)


def approve(live: LiveDemo, client_id: str) -> None:
    with admin(live) as operator:
        review = f"/portal/admin/apps/{client_id}"
        assert post_form(operator, review, f"{review}/approve", {}).status_code == 303


def test_an_approved_apps_details_change_at_once_on_the_same_client_id(live: LiveDemo) -> None:
    _, dev = developer(live)
    with dev:
        client_id = client_id_of(submit(dev))
        approve(live, client_id)
        detail = f"/portal/apps/{client_id}"
        assert f'href="/portal/apps/{client_id}/edit"' in dev.get(detail).text
        form = dev.get(f"{detail}/edit")
        assert form.status_code == 200
        assert f"{OLD_CALLBACK}\nhttp://localhost:8080/cb</textarea>" in form.text
        assert 'name="domain"' not in form.text and "api.example.com" in form.text
        assert authorize(live, client_id, OLD_CALLBACK).status_code != 400

        changes = {
            **GOOD_FORM,
            "description": "Plans charging around tariffs and solar.",
            "redirect_uris": NEW_CALLBACK,
            # Not editable: sent anyway, ignored.
            "domain": "api.other.org",
            "scopes": ["openid", "vehicle_cmds"],
            "client_type": "public",
        }
        saved = post_form(dev, f"{detail}/edit", f"{detail}/edit", changes)
        assert saved.status_code == 303 and saved.headers["location"].endswith("notice=updated")
        assert "Application details saved." in text_of(dev.get(saved.headers["location"]))

    stored = application(live, client_id)
    assert stored.status == "approved" and stored.client_id == client_id
    assert stored.redirect_uris == [NEW_CALLBACK]
    assert stored.description == "Plans charging around tariffs and solar."
    assert stored.domain == "api.example.com" and stored.client_type == "confidential"
    assert stored.scopes == list(GOOD_FORM["scopes"])
    old = authorize(live, client_id, OLD_CALLBACK)
    assert old.status_code == 400 and "not exactly one of its registered redirect URIs" in old.text
    assert authorize(live, client_id, NEW_CALLBACK).status_code != 400


def test_a_bad_edit_names_every_problem_keeps_what_was_typed_and_changes_nothing(
    live: LiveDemo,
) -> None:
    _, dev = developer(live)
    with dev:
        client_id = client_id_of(submit(dev))  # still pending: editable too
        before = application(live, client_id)
        edit = f"/portal/apps/{client_id}/edit"
        bad = {
            **GOOD_FORM,
            "name": "",
            "redirect_uris": "http://planner.example.com/cb",
            "allowed_origins": "https://planner.other.org",
        }
        refused = post_form(dev, edit, edit, bad)
    assert refused.status_code == 400
    errors = dict(re.findall(r'<p class="error" id="([a-z_]+)-error">([^<]*)</p>', refused.text))
    assert set(errors) == {"name", "redirect_uris", "allowed_origins"}
    assert "use https" in errors["redirect_uris"]
    assert "keep an origin under example.com" in errors["allowed_origins"]
    assert "https://planner.other.org</textarea>" in refused.text
    after = application(live, client_id)
    assert (after.name, after.redirect_uris, after.allowed_origins) == (
        before.name,
        before.redirect_uris,
        before.allowed_origins,
    )


def test_only_the_owner_edits_and_a_rejected_application_is_final(live: LiveDemo) -> None:
    _, alice = developer(live)
    _, bob = developer(live)
    with alice, bob, admin(live) as operator:
        client_id = client_id_of(submit(alice))
        edit = f"/portal/apps/{client_id}/edit"
        assert bob.get(edit).status_code == 404
        token = csrf_of(bob.get("/portal/apps").text)
        taken = bob.post(edit, data={**GOOD_FORM, "name": "Bob's now", "csrf_token": token})
        assert taken.status_code == 404
        forged = alice.post(edit, data={**GOOD_FORM, "name": "No token"})
        assert forged.status_code == 403
        review = f"/portal/admin/apps/{client_id}"
        reason = "Say which data you read."
        assert (
            post_form(operator, review, f"{review}/reject", {"reason": reason}).status_code == 303
        )
        assert (
            f'href="/portal/apps/{client_id}/edit"'
            not in alice.get(f"/portal/apps/{client_id}").text
        )
        shown = alice.get(edit)
        assert shown.status_code == 409 and "submit a new one" in text_of(shown)
        late = post_form(alice, f"/portal/apps/{client_id}", edit, {**GOOD_FORM, "name": "Late"})
        assert late.status_code == 409 and "cannot be changed" in text_of(late)
    assert application(live, client_id).name == GOOD_FORM["name"]


def test_an_app_registered_without_the_form_gets_its_domain_once(
    demo_factory: Callable[..., LiveDemo],
) -> None:
    """The demo's app has no domain, web site or description: its developer fills them in."""
    live = demo_factory(vehicles=1)
    client_id = str(live.info["client_id"])
    edit = f"/portal/apps/{client_id}/edit"
    with browser(live, str(live.info["developer"]["email"])) as dev:
        assert 'name="domain"' in dev.get(edit).text
        details = {
            **GOOD_FORM,
            "domain": "fleet.example.com",
            "website": "https://fleet.example.com",
            "allowed_origins": "https://fleet.example.com",
            "redirect_uris": "http://localhost:8085/callback",
        }
        assert post_form(dev, edit, edit, details).status_code == 303
        assert 'name="domain"' not in dev.get(edit).text
    stored = application(live, client_id)
    assert stored.domain == "fleet.example.com"
    assert stored.redirect_uris == ["http://localhost:8085/callback"]


def test_a_domain_another_app_registered_cannot_be_set(
    demo_factory: Callable[..., LiveDemo],
) -> None:
    live = demo_factory(vehicles=1)
    owner = new_email("holder")
    make_user(live, owner)
    holder = approved_app(live, owner, domain="api.example.com")
    mark_registered(live, holder.client_id)
    client_id = str(live.info["client_id"])
    edit = f"/portal/apps/{client_id}/edit"
    with browser(live, str(live.info["developer"]["email"])) as dev:
        details = {**GOOD_FORM, "redirect_uris": "http://localhost:8085/callback"}
        taken = post_form(dev, edit, edit, details)
    assert taken.status_code == 400
    assert "api.example.com is registered by another application" in text_of(taken)
    assert application(live, client_id).domain == ""


def _hidden(html: str, name: str) -> str:
    found = re.search(rf'name="{name}" value="([^"]*)"', html)
    assert found is not None, f"no {name} on the page"
    return found.group(1)


def test_a_decision_on_a_version_the_developer_changed_since_is_refused(
    live: LiveDemo,
) -> None:
    stale_decisions_are_refused(live)


def stale_decisions_are_refused(live: LiveDemo) -> None:
    """The operator opens the review page; the developer edits the pending app meanwhile. Both
    decisions from the stale page are refused with 409 and the current version shown; the
    decision from the reloaded page goes through. (Also run on PostgreSQL, where the decision
    locks the application's row.)"""
    _, dev = developer(live)
    with dev, admin(live) as operator:
        client_id = client_id_of(submit(dev))
        review = f"/portal/admin/apps/{client_id}"
        stale = operator.get(review).text
        stale_form = {"csrf_token": csrf_of(stale), "version": _hidden(stale, "version")}
        edit = f"/portal/apps/{client_id}/edit"
        edited = post_form(dev, edit, edit, {**GOOD_FORM, "intended_use": "Resell locations."})
        assert edited.status_code == 303

        typed = {"approve": ("note", "Fine by the rules"), "reject": ("reason", "Too vague")}
        for action, (field, words) in typed.items():
            refused = operator.post(f"{review}/{action}", data={**stale_form, field: words})
            assert refused.status_code == 409
            shown = text_of(refused)
            assert "changed this application after you opened it" in shown
            assert "Resell locations." in shown  # the version to review now
            assert words in refused.text  # what the operator typed is kept
            assert application(live, client_id).status == "pending"

        fresh = operator.get(review).text
        approved = operator.post(
            f"{review}/approve",
            data={"csrf_token": csrf_of(fresh), "version": _hidden(fresh, "version")},
        )
        assert approved.status_code == 303
        assert application(live, client_id).status == "approved"
