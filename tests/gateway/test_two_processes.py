"""Two real `flotta serve` processes sharing PostgreSQL, NATS and Redis: any one serves any car.

The simulated cars connect to process A only; the client talks to process B. Killing A must
make B report the cars offline within the presence TTL.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from flotta.auth.scopes import OWNER_SCOPES
from flotta.clock import ScaledClock, SystemClock
from flotta.db.engine import make_engine, make_sessionmaker
from flotta.demo import provision_demo
from flotta.runtime import build_token_service
from flotta.settings import Settings
from flotta.sim.fleet import DeviceIdentity, SimFleet
from tests.scaled import (
    PRESENCE_TTL_S,
    LoopThread,
    Server,
    clear_flotta_env,
    scaled_pair,
    wait_until,
)

CARS = 2


async def provision(settings: Settings) -> tuple[str, list[DeviceIdentity]]:
    engine = make_engine(settings.database_url)
    try:
        async with make_sessionmaker(engine)() as session, session.begin():
            return await provision_demo(session, settings, SystemClock(), CARS, [])
    finally:
        await engine.dispose()


async def start_fleet(identities: list[DeviceIdentity], gateway: str) -> SimFleet:
    url = gateway.replace("http", "ws", 1) + "/gateway/v1/connect"
    fleet = SimFleet(
        identities, url=url, clock=ScaledClock(), wake_profile="instant", idle_sleep_s=3600
    )
    fleet.start()
    await fleet.wait_connected(timeout_s=15)
    return fleet


def states(client: httpx.Client) -> dict[str, str]:
    listed = client.get("/api/1/vehicles")
    assert listed.status_code == 200, listed.text
    return {v["vin"]: v["state"] for v in listed.json()["response"]}


def test_any_process_serves_any_vehicle(tmp_path: Path) -> None:
    with scaled_pair(tmp_path) as pair:
        subject, identities = pair.loop.call(provision(pair.settings))
        fleet = pair.loop.call(start_fleet(identities, pair.a.url))
        try:
            pair.b.wait_ready()
            token = build_token_service(pair.settings, SystemClock()).mint(subject, OWNER_SCOPES)
            vins = [i.vin for i in identities]
            _exercise_b(pair.b, pair.a, token, vins, fleet, pair.loop)
        finally:
            pair.loop.call(fleet.stop())


def _exercise_b(
    b: Server, a: Server, token: str, vins: list[str], fleet: SimFleet, loop: LoopThread
) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=b.url, headers=headers, timeout=15) as client:
        wait_until(lambda: set(states(client).values()) == {"online"}, 10, "B listing cars online")
        vin = vins[0]
        assert client.get(f"/api/1/vehicles/{vin}").json()["response"]["state"] == "online"
        data = client.get(f"/api/1/vehicles/{vin}/vehicle_data").json()["response"]
        assert data["state"] == "online" and data["vin"] == vin
        assert "charge_state" in data and "vehicle_config" in data

        _command_through_b(client, vin)
        _sleep_and_wake_through_b(client, vin, fleet, loop)
        _crash_a(client, a, vins)


def _command_through_b(client: httpx.Client, vin: str) -> None:
    done = client.post(f"/api/1/vehicles/{vin}/command/set_sentry_mode", json={"on": True})
    assert done.status_code == 200, done.text
    assert done.json()["response"]["result"] is True
    data = client.get(f"/api/1/vehicles/{vin}/vehicle_data", params={"endpoints": "vehicle_state"})
    assert data.json()["response"]["vehicle_state"]["sentry_mode"] is True
    # Sentry mode keeps a car awake, and the next step puts this one to sleep.
    off = client.post(f"/api/1/vehicles/{vin}/command/set_sentry_mode", json={"on": False})
    assert off.json()["response"]["result"] is True
    limit = client.post(f"/api/1/vehicles/{vin}/command/set_charge_limit", json={"percent": 61})
    assert limit.json()["response"]["result"] is True
    charge = client.get(f"/api/1/vehicles/{vin}/vehicle_data", params={"endpoints": "charge_state"})
    assert charge.json()["response"]["charge_state"]["charge_limit_soc"] == 61


def _sleep_and_wake_through_b(
    client: httpx.Client, vin: str, fleet: SimFleet, loop: LoopThread
) -> None:
    loop.call(fleet.device(vin).sleep_now())
    wait_until(lambda: states(client)[vin] == "asleep", 5, "B seeing the car asleep")
    asleep = client.get(f"/api/1/vehicles/{vin}/vehicle_data")
    assert asleep.status_code == 408, asleep.text
    assert asleep.json()["error"] == "vehicle unavailable: vehicle is offline or asleep"
    woken = client.post(f"/api/1/vehicles/{vin}/wake_up")
    assert woken.status_code == 200, woken.text
    assert woken.json()["response"]["state"] in ("online", "asleep")
    wait_until(lambda: states(client)[vin] == "online", 5, "B seeing the car awake")
    assert client.get(f"/api/1/vehicles/{vin}/vehicle_data").status_code == 200


def _crash_a(client: httpx.Client, a: Server, vins: list[str]) -> None:
    a.kill()  # SIGKILL: no clean-up, so only the presence TTL can tell B
    took = wait_until(
        lambda: set(states(client).values()) == {"offline"},
        PRESENCE_TTL_S + 3,
        "B seeing the cars offline after A died",
    )
    assert took <= PRESENCE_TTL_S + 1.0
    # Commands fail at once with Tesla's 408: nobody answers for the car any more.
    failed = client.post(f"/api/1/vehicles/{vins[1]}/command/honk_horn")
    assert failed.status_code == 408, failed.text
    assert client.get(f"/api/1/vehicles/{vins[1]}/vehicle_data").status_code == 408


@pytest.fixture(autouse=True)
def _no_stray_flotta_env(monkeypatch: pytest.MonkeyPatch) -> None:
    clear_flotta_env(monkeypatch)
