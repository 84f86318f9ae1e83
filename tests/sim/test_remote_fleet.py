"""`flotta sim --connect URL --vehicles N --energy-sites M` runs devices in another process."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from tests.live import LiveDemo


@pytest.fixture
def live(demo_factory: Callable[..., LiveDemo]) -> LiveDemo:
    """Its own demo: the remote cars join the demo account, which other tests count."""
    return demo_factory(vehicles=2)


def test_remote_sim_process_connects_and_obeys(live: LiveDemo) -> None:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "flotta.cli",
            "sim",
            "--connect",
            live.base_url.replace("http", "ws"),
            "--vehicles",
            "3",
            "--data-dir",
            str(live.data_dir),
            "--wake-profile",
            "instant",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    # A first-party token (as `flotta token` mints): the demo app's consent names only the
    # cars present when the owner consented, not ones added later.
    token = live.mint(["vehicle_device_data", "vehicle_cmds"])
    headers = {"Authorization": f"Bearer {token}"}
    try:
        with httpx.Client(base_url=live.base_url, headers=headers, timeout=10) as client:
            deadline = time.monotonic() + 30
            while True:
                vehicles = client.get("/api/1/vehicles").json()["response"]
                remote = [v for v in vehicles if v["vin"] not in live.vins]
                if len(remote) == 3 and all(v["state"] == "online" for v in remote):
                    break
                assert proc.poll() is None, proc.communicate()[0]
                assert time.monotonic() < deadline, f"remote cars never came online: {remote}"
                time.sleep(0.1)
            vin = remote[0]["vin"]
            done = client.post(f"/api/1/vehicles/{vin}/command/set_sentry_mode", json={"on": True})
            assert done.json()["response"]["result"] is True
            data = client.get(
                f"/api/1/vehicles/{vin}/vehicle_data", params={"endpoints": "vehicle_state"}
            ).json()["response"]
            assert data["vehicle_state"]["sentry_mode"] is True
            # The demo's own cars were not taken over by the remote process.
            assert all(v["state"] == "online" for v in vehicles if v["vin"] in live.vins[:2])
    finally:
        proc.terminate()
        proc.communicate(timeout=20)
    deadline = time.monotonic() + 10
    while live.handle.runtime.hub.state_of(vin) != "offline":
        assert time.monotonic() < deadline, "the remote car stayed online after its process died"
        time.sleep(0.05)


def test_remote_sim_process_runs_energy_sites(live: LiveDemo) -> None:
    gateway = live.base_url.replace("http", "ws")
    command = [sys.executable, "-m", "flotta.cli", "sim", "--connect", gateway]
    options = ["--vehicles", "0", "--energy-sites", "2", "--data-dir", str(live.data_dir)]
    proc = subprocess.Popen(
        command + options, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    token = live.mint(["energy_device_data", "energy_cmds"])
    headers = {"Authorization": f"Bearer {token}"}
    try:
        with httpx.Client(base_url=live.base_url, headers=headers, timeout=10) as client:
            homes = _answering_homes(client, proc, expected=2)
            site = homes[0]["energy_site_id"]
            done = client.post(
                f"/api/1/energy_sites/{site}/backup", json={"backup_reserve_percent": 42}
            )
            assert done.json()["response"] == {"code": 201, "message": "Updated"}
            info = client.get(f"/api/1/energy_sites/{site}/site_info").json()["response"]
            assert info["backup_reserve_percent"] == 42
    finally:
        proc.terminate()
        proc.communicate(timeout=20)
    deadline = time.monotonic() + 10
    while live.handle.runtime.energy.connected(site):
        assert time.monotonic() < deadline, "the remote home stayed linked after its process died"
        time.sleep(0.05)


def _answering_homes(client: httpx.Client, proc: subprocess.Popen[str], expected: int) -> list[Any]:
    """The remote homes in `products` once each answers live_status; bounded by 30 s."""
    homes: list[Any] = []
    for _ in range(300):
        products = client.get("/api/1/products").json()["response"]
        homes = [p for p in products if str(p.get("site_name", "")).startswith("Remote")]
        live = "/api/1/energy_sites/{}/live_status"
        answering = [client.get(live.format(h["energy_site_id"])).status_code for h in homes]
        if len(homes) == expected and answering == [200] * expected:
            return homes
        assert proc.poll() is None, proc.communicate()[0]
        time.sleep(0.1)
    raise AssertionError(f"remote homes never answered: {homes}")
