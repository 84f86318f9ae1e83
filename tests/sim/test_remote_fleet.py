"""`flotta sim --connect URL --vehicles N` runs cars in another process against a live gateway."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable

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
