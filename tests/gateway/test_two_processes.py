"""Two real `flotta serve` processes sharing PostgreSQL, NATS and Redis: any one serves any car.

The simulated cars connect to process A only; the client talks to process B. Killing A must
make B report the cars offline within the presence TTL.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from flotta.auth.tokens import OWNER_SCOPES
from flotta.clock import ScaledClock, SystemClock
from flotta.db.engine import make_engine, make_sessionmaker
from flotta.demo import provision_demo
from flotta.runtime import build_token_service
from flotta.settings import Settings
from flotta.sim.fleet import DeviceIdentity, SimFleet
from tests.conftest import service_reachable
from tests.postgres import fresh_database

T = TypeVar("T")

NATS_URL = "nats://127.0.0.1:4222"
REDIS_URL = "redis://127.0.0.1:6379/0"
PRESENCE_TTL_S = 2.0
STARTUP_S = 30.0
CARS = 2


class LoopThread:
    """An event loop in a background thread, for the simulator and async set-up."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def call(self, coro: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        future: Future[T] = asyncio.run_coroutine_threadsafe(coro, self.loop)
        return future.result(timeout)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        if not self.thread.is_alive():
            self.loop.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_until(
    check: Callable[[], bool], timeout_s: float, what: str, step_s: float = 0.05
) -> float:
    """Poll `check`, bounded by time and count; return the seconds it took."""
    started = time.monotonic()
    for _ in range(int(timeout_s / step_s) + 1):
        if check():
            return time.monotonic() - started
        if time.monotonic() - started > timeout_s:
            break
        time.sleep(step_s)
    raise AssertionError(f"{what} did not happen within {timeout_s:g} s")


class Server:
    """One `flotta serve` subprocess, its port and its log."""

    def __init__(self, name: str, env: dict[str, str], data_dir: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = data_dir / f"{name}.log"
        self._log = self.log_path.open("w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "flotta.cli", "serve"],
            env={**env, "FLOTTA_PORT": str(self.port)},
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def log_tail(self) -> str:
        return self.log_path.read_text()[-3000:]

    def wait_ready(self) -> None:
        def up() -> bool:
            assert self.proc.poll() is None, f"server exited early:\n{self.log_tail()}"
            try:
                return httpx.get(f"{self.url}/status", timeout=1).status_code == 200
            except httpx.TransportError:
                return False

        wait_until(up, STARTUP_S, f"{self.url} becoming ready", step_s=0.1)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self._log.close()


@contextmanager
def shared_database(loop: LoopThread) -> Iterator[str]:
    """A fresh PostgreSQL database, created and dropped on the helper loop."""
    cm = fresh_database()
    url = loop.call(cm.__aenter__())
    try:
        yield url
    finally:
        loop.call(cm.__aexit__(None, None, None))


def scaled_env(db_url: str, data_dir: Path) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("FLOTTA_")}
    return {
        **base,
        "PYTHONUNBUFFERED": "1",
        "FLOTTA_PROFILE": "scaled",
        "FLOTTA_DB__URL": db_url,
        "FLOTTA_BUS__URL": NATS_URL,
        "FLOTTA_KV__URL": REDIS_URL,
        # Unique per run, so parallel runs on the same NATS and Redis never meet.
        "FLOTTA_NAMESPACE": f"t{secrets.token_hex(4)}",
        "FLOTTA_SECRET_KEY": secrets.token_urlsafe(24),
        # Shared, so both processes sign and verify tokens with the same key.
        "FLOTTA_DATA_DIR": str(data_dir),
        "FLOTTA_GATEWAY__PRESENCE_TTL_S": str(PRESENCE_TTL_S),
        "FLOTTA_LOG_LEVEL": "warning",
    }


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
    service_reachable("127.0.0.1", 4222, "NATS")
    service_reachable("127.0.0.1", 6379, "Redis")
    loop = LoopThread()
    servers: list[Server] = []
    fleet: SimFleet | None = None
    try:
        with shared_database(loop) as db_url:
            env = scaled_env(db_url, tmp_path)
            servers.append(Server("a", env, tmp_path))
            servers[0].wait_ready()  # A migrates the database and creates the signing key
            servers.append(Server("b", env, tmp_path))
            a, b = servers
            settings = Settings(
                profile="scaled",
                data_dir=tmp_path,
                secret_key=env["FLOTTA_SECRET_KEY"],
                db={"url": db_url},
                bus={"url": NATS_URL},
                kv={"url": REDIS_URL},
            )
            subject, identities = loop.call(provision(settings))
            fleet = loop.call(start_fleet(identities, a.url))
            b.wait_ready()
            token = build_token_service(settings, SystemClock()).mint(subject, OWNER_SCOPES)
            vins = [i.vin for i in identities]
            _exercise_b(b, a, token, vins, fleet, loop)
    finally:
        if fleet is not None:
            loop.call(fleet.stop())
        for server in servers:
            server.stop()
        loop.stop()


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
    """Settings built in this process must not pick up the developer's FLOTTA_* variables."""
    for key in [
        k for k in os.environ if k.startswith("FLOTTA_") and k != "FLOTTA_REQUIRE_SERVICES"
    ]:
        monkeypatch.delenv(key)
