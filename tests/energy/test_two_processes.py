"""Two real `flotta serve` processes sharing PostgreSQL, NATS and Redis: any one serves any site.

The simulated home links to process A only; the client talks to process B.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from flotta.auth.scopes import OWNER_SCOPES
from flotta.clock import ScaledClock, SystemClock
from flotta.db.engine import make_engine, make_sessionmaker
from flotta.demo import DEMO_OWNER
from flotta.devices.service import ensure_owner
from flotta.energy.demo import build_sim_site, neighbourhood, provision_demo_sites
from flotta.energy.link import SITE_PATH
from flotta.runtime import build_token_service
from flotta.settings import Settings
from flotta.sim.energy_fleet import SiteFleet
from tests.scaled import PRESENCE_TTL_S, clear_flotta_env, scaled_pair, wait_until


async def start_home(settings: Settings, gateway: str) -> tuple[str, int, SiteFleet]:
    """Provision one battery home and link its simulator to `gateway`."""
    clock = SystemClock()
    engine = make_engine(settings.database_url)
    try:
        async with make_sessionmaker(engine)() as session, session.begin():
            owner = await ensure_owner(session, DEMO_OWNER, "Demo Owner", clock)
            homes = neighbourhood(1, "Scaled Home")
            made = await provision_demo_sites(session, owner, settings.secret_key, clock, [], homes)
    finally:
        await engine.dispose()
    url = gateway.replace("http", "ws", 1) + SITE_PATH
    sims = [build_sim_site(s, i, url=url, clock=ScaledClock(), seed=7) for s, i in made]
    fleet = SiteFleet(sims)
    fleet.start()
    await fleet.wait_connected(timeout_s=15)
    return owner.uuid, sims[0].site_id, fleet


def response(answer: httpx.Response) -> Any:
    assert answer.status_code == 200, answer.text
    return answer.json()["response"]


def test_any_process_serves_any_energy_site(tmp_path: Path) -> None:
    with scaled_pair(tmp_path) as pair:
        subject, site_id, fleet = pair.loop.call(start_home(pair.settings, pair.a.url))
        try:
            pair.b.wait_ready()
            token = build_token_service(pair.settings, SystemClock()).mint(subject, OWNER_SCOPES)
            headers = {"Authorization": f"Bearer {token}"}
            with httpx.Client(base_url=pair.b.url, headers=headers, timeout=15) as client:
                _read_and_write_through_b(client, site_id)
                pair.a.kill()  # SIGKILL: the site's link and A's bus subscription vanish
                gone = client.get(f"/api/1/energy_sites/{site_id}/live_status")
                assert gone.status_code == 408, gone.text
                assert "energy site is offline" in gone.json()["error"]
        finally:
            pair.loop.call(fleet.stop())


def _read_and_write_through_b(client: httpx.Client, site_id: int) -> None:
    base = f"/api/1/energy_sites/{site_id}"
    live = response(client.get(f"{base}/live_status"))
    assert live["percentage_charged"] > 0 and "solar_power" in live
    written = response(client.post(f"{base}/backup", json={"backup_reserve_percent": 63}))
    assert written == {"code": 201, "message": "Updated"}
    assert response(client.get(f"{base}/site_info"))["backup_reserve_percent"] == 63
    stormy = client.post(f"{base}/storm_mode", json={"enabled": True})
    assert response(stormy) == {"code": 201, "message": "Updated"}
    assert response(client.get(f"{base}/site_status"))["storm_mode_enabled"] is True

    def listed_live() -> bool:
        items = response(client.get("/api/1/products"))
        site = next(i for i in items if i.get("energy_site_id") == site_id)
        # Live members come from the site's last report, fetched from process A.
        return bool(site["percentage_charged"] > 0 and site["storm_mode_enabled"])

    wait_until(listed_live, PRESENCE_TTL_S + 5, "B listing the site with its live values")


@pytest.fixture(autouse=True)
def _no_stray_flotta_env(monkeypatch: pytest.MonkeyPatch) -> None:
    clear_flotta_env(monkeypatch)
