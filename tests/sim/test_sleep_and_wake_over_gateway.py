"""Sleep and wake as a client sees them, with an accelerated simulator clock instead of waiting."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx
import pytest
from tests.live import LiveDemo

SPEED = 200.0  # simulated seconds per wall second


@pytest.fixture
def fast_demo(demo_factory: Callable[..., LiveDemo]) -> LiveDemo:
    return demo_factory(wake_profile="realistic", speed=SPEED)


def state(client: httpx.Client, vin: str) -> str:
    return str(client.get(f"/api/1/vehicles/{vin}").json()["response"]["state"])


def wait_state(client: httpx.Client, vin: str, wanted: str, timeout_s: float) -> float:
    started = time.monotonic()
    while state(client, vin) != wanted:
        assert time.monotonic() - started < timeout_s, f"{vin} never became {wanted}"
        time.sleep(0.02)
    return time.monotonic() - started


def test_idle_cars_fall_asleep_and_busy_ones_do_not(fast_demo: LiveDemo) -> None:
    headers = {"Authorization": f"Bearer {fast_demo.token}"}
    with httpx.Client(base_url=fast_demo.base_url, headers=headers, timeout=10) as client:
        # 15 simulated minutes of idling take 4.5 s of wall time at this speed.
        wait_state(client, fast_demo.vins[2], "asleep", timeout_s=20)
        wait_state(client, fast_demo.vins[3], "asleep", timeout_s=5)
        assert state(client, fast_demo.vins[0]) == "online"  # charging at home
        assert state(client, fast_demo.vins[1]) == "online"  # driving


def test_realistic_wake_takes_ten_to_sixty_simulated_seconds(fast_demo: LiveDemo) -> None:
    vin = fast_demo.vins[3]
    fast_demo.call(fast_demo.device(vin).sleep_now())
    headers = {"Authorization": f"Bearer {fast_demo.token}"}
    with httpx.Client(base_url=fast_demo.base_url, headers=headers, timeout=10) as client:
        wait_state(client, vin, "asleep", timeout_s=5)
        sim_clock = fast_demo.handle.fleet.clock
        before = sim_clock.monotonic()
        first = client.post(f"/api/1/vehicles/{vin}/wake_up").json()["response"]
        assert first["state"] in ("asleep", "online")
        wait_state(client, vin, "online", timeout_s=10)
        waited_sim_s = sim_clock.monotonic() - before
        assert 10 <= waited_sim_s <= 60 + 0.5 * SPEED  # allow half a wall second of polling
        data = client.get(f"/api/1/vehicles/{vin}/vehicle_data").json()["response"]
        assert data["state"] == "online" and "charge_state" in data
