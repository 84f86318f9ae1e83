"""The consent page and the owner console offer energy sites beside vehicles, and the
choice decides which sites an app's token reaches."""

from __future__ import annotations

import re

from tests.energy.support import battery_site, solar_site
from tests.live import LiveDemo
from tests.oauth.flow import (
    DEMO_OWNER,
    Pkce,
    api,
    authorize_params,
    authorize_url,
    authorized_tokens,
    browser,
    checkboxes,
    new_owner,
    register_app,
)


def test_the_consent_page_lists_the_owners_sites_only_for_energy_scopes(live: LiveDemo) -> None:
    owner = new_owner(live, email=DEMO_OWNER)
    app = register_app(live, name="Solar Watcher")
    with browser(live, owner) as client:
        energy = client.get(authorize_url(authorize_params(app, Pkce())))
        vehicles_only = client.get(
            authorize_url(authorize_params(app, Pkce(), scope="openid vehicle_device_data"))
        )
    offered = set(checkboxes(energy.text, "allow_device"))
    assert {f"energy_site:{battery_site(live)}", f"energy_site:{solar_site(live)}"} <= offered
    assert not any(
        ref.startswith("energy_site:") for ref in checkboxes(vehicles_only.text, "allow_device")
    )


def test_only_the_chosen_site_answers_and_the_console_keeps_it(live: LiveDemo) -> None:
    owner = new_owner(live, email=DEMO_OWNER)
    app = register_app(live, name="Battery Coach")
    chosen = f"energy_site:{battery_site(live)}"
    tokens = authorized_tokens(live, owner, app, devices={chosen})
    with api(live, tokens["access_token"]) as client:
        assert (
            client.get(f"/api/1/energy_sites/{battery_site(live)}/live_status").status_code == 200
        )
        assert client.get(f"/api/1/energy_sites/{solar_site(live)}/live_status").status_code == 404
        assert client.get(f"/api/1/vehicles/{owner.vins[0]}/vehicle_data").status_code == 404
        products = client.get("/api/1/products").json()["response"]
        assert [p.get("energy_site_id") for p in products] == [battery_site(live)]
    with browser(live, owner) as console:
        page = console.get("/portal/console").text
        section = page.split(">Battery Coach</h2>")[1]
        assert f'value="{chosen}"' in section.split("</section>")[0]
        grant = re.findall(r'id="grant-(\d+)"', page.split(">Battery Coach</h2>")[0])[-1]
        token = re.search(r'name="csrf_token" value="([0-9a-f]+)"', page)
        assert token is not None
        form = {
            "csrf_token": token.group(1),
            "scope": ["openid", "offline_access", "energy_device_data"],
            "device": [chosen],
        }
        assert console.post(f"/portal/console/{grant}", data=form).status_code == 303
    with api(live, tokens["access_token"]) as client:
        assert (
            client.get(f"/api/1/energy_sites/{battery_site(live)}/live_status").status_code == 200
        )
        assert client.get(f"/api/1/energy_sites/{battery_site(live)}/site_info").status_code == 200
