"""Configs reach the simulated cars over their links: pending → synced, errors, removal, consent."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from flotta.devices.directory import VehicleRecord
from flotta.gateway.protocol import Frame, FrameType
from flotta.telemetry.repository import TelemetryRepository
from tests.live import LiveDemo, start_live_demo
from tests.oauth.flow import browser, new_owner
from tests.telemetry.streaming_support import (
    api,
    ca_pem,
    config,
    loopback_listener,
    pair_keys,
    wait_for,
)

CREATE = "/api/1/vehicles/fleet_telemetry_config"
DEMO_OWNER = "owner@flotta.demo"


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveDemo]:
    live = start_live_demo(Path(tmp_path_factory.mktemp("telemetry-sync")), vehicles=2)
    try:
        pair_keys(live, live.vins)
        yield live
    finally:
        live.stop()


@pytest.fixture
def receiver() -> Iterator[int]:
    with loopback_listener() as port:
        yield port


class StreamWatch:
    """Counts the STREAM frames the gateway receives, by config id."""

    def __init__(self, live: LiveDemo) -> None:
        self.frames: list[tuple[str, int]] = []
        self.hub = live.handle.runtime.hub
        self.hub.frame_listeners[FrameType.STREAM].append(self.seen)

    def seen(self, record: VehicleRecord, frame: Frame) -> None:
        self.frames.append((record.vin, frame.correlation_id))

    def count(self, config_id: int) -> int:
        return sum(1 for _, seen in self.frames if seen == config_id)

    def close(self) -> None:
        self.hub.frame_listeners[FrameType.STREAM].remove(self.seen)


def _shown(live: LiveDemo, vin: str, token: str | None = None) -> dict[str, Any]:
    with api(live, token) as client:
        answer = client.get(f"/api/1/vehicles/{vin}/fleet_telemetry_config")
    assert answer.status_code == 200, answer.text
    shown: dict[str, Any] = answer.json()["response"]
    return shown


def _config_id(live: LiveDemo, vin: str) -> int:
    async def find() -> int:
        runtime = live.handle.runtime
        async with runtime.sessions() as session:
            row = await TelemetryRepository(session).config(str(live.info["client_id"]), vin)
            assert row is not None
            return row.id

    return live.call(find())


def _take_offline(live: LiveDemo, vin: str) -> Callable[[], None]:
    """Cut the car's link (its task ends); the returned function reconnects it."""
    fleet = live.handle.fleet
    device = fleet.device(vin)

    async def cut() -> None:
        for task in fleet._tasks:
            if task.get_name() == f"sim-{vin}":
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)

    live.call(cut())

    def reconnect() -> None:
        async def start() -> None:
            fleet._tasks.append(asyncio.create_task(device.run(), name=f"sim-{vin}"))

        live.call(start())

    return reconnect


def test_an_offline_car_shows_pending_then_synced_once_it_connects(
    demo: LiveDemo, receiver: int
) -> None:
    vin = demo.vins[1]
    reconnect = _take_offline(demo, vin)
    wait_for(lambda: demo.call(demo.handle.runtime.hub.state(vin)) == "offline", what="offline")
    with api(demo) as client:
        answer = client.post(CREATE, json={"vins": [vin], "config": config(receiver, ca_pem())})
    assert answer.json()["response"]["updated_vehicles"] == 1
    pending = _shown(demo, vin)
    assert pending["synced"] is False and pending["status"] == "pending"
    assert pending["updated_at"] and pending["synced_at"] is None and pending["version"] == 1
    reconnect()
    synced = wait_for(
        lambda: (shown := _shown(demo, vin))["synced"] and shown, what="synced after reconnect"
    )
    assert synced["status"] == "synced" and synced["error"] is None
    assert synced["synced_at"] >= synced["updated_at"]
    assert _config_id(demo, vin) in demo.device(vin).telemetry.streams


def test_a_config_streams_and_delete_stops_the_car(demo: LiveDemo, receiver: int) -> None:
    vin = demo.vins[0]
    watch = StreamWatch(demo)
    try:
        fields = {"Odometer": {"interval_seconds": 1}, "Soc": {"interval_seconds": 1}}
        body = {"vins": [vin], "config": config(receiver, ca_pem(), fields=fields)}
        with api(demo) as client:
            assert client.post(CREATE, json=body).status_code == 200
        config_id = _config_id(demo, vin)
        wait_for(lambda: _shown(demo, vin)["synced"], what="synced")
        wait_for(lambda: watch.count(config_id) >= 1, what="a STREAM frame")
        with api(demo) as client:
            deleted = client.delete(f"/api/1/vehicles/{vin}/fleet_telemetry_config")
        assert deleted.json() == {"response": {"updated_vehicles": 1}}
        wait_for(lambda: config_id not in demo.device(vin).telemetry.streams, what="removed")
        seen = watch.count(config_id)
        demo.call(asyncio.sleep(1.5))  # three collector periods
        assert watch.count(config_id) == seen
        assert _shown(demo, vin)["config"] is None
    finally:
        watch.close()


def test_a_config_the_car_refuses_shows_its_error_everywhere(demo: LiveDemo, receiver: int) -> None:
    vin = demo.vins[0]
    fields = {"SemitruckTpmsPressureRe1L0": {"interval_seconds": 10}}
    body = {"vins": [vin], "config": config(receiver, ca_pem(), fields=fields)}
    with api(demo) as client:
        assert client.post(CREATE, json=body).status_code == 200
    refused = wait_for(
        lambda: (shown := _shown(demo, vin))["status"] == "error" and shown, what="error"
    )
    assert refused["synced"] is False
    assert "cannot stream SemitruckTpmsPressureRe1L0" in refused["error"]
    client_id = str(demo.info["client_id"])
    partner = demo.handle.runtime.tokens.mint(client_id, [], client_id=client_id, partner=True)
    with api(demo) as client:
        errors = client.get(f"/api/1/vehicles/{vin}/fleet_telemetry_errors").json()["response"]
    with api(demo, partner) as client:
        listed = client.get("/api/1/partner_accounts/fleet_telemetry_errors").json()["response"]
        vins = client.get("/api/1/partner_accounts/fleet_telemetry_error_vins").json()["response"]
    entry = errors["fleet_telemetry_errors"][0]
    assert entry["name"] == client_id and entry["vin"] == vin
    assert "cannot stream SemitruckTpmsPressureRe1L0" in entry["error"]
    assert listed[0]["vin"] == vin and vins == [vin]


def test_revoking_consent_removes_the_config_and_stops_the_car(
    demo_factory: Callable[..., LiveDemo],
) -> None:
    live = demo_factory(vehicles=1)
    vin = live.vins[0]
    pair_keys(live, [vin])
    with loopback_listener() as port, api(live) as client:
        answer = client.post(CREATE, json={"vins": [vin], "config": config(port, ca_pem())})
    assert answer.json()["response"]["updated_vehicles"] == 1
    config_id = _config_id(live, vin)
    wait_for(lambda: config_id in live.device(vin).telemetry.streams, what="car has the config")
    owner = new_owner(live, email=DEMO_OWNER)
    with browser(live, owner) as console:
        page = console.get("/portal/console").text
        section = page.split(">Flotta Demo App</h2>")[0]
        grant = re.findall(r'id="grant-(\d+)"', section)[-1]
        csrf = re.search(r'name="csrf_token" value="([0-9a-f]+)"', page)
        assert csrf is not None
        done = console.post(f"/portal/console/{grant}/revoke", data={"csrf_token": csrf.group(1)})
    assert done.status_code == 303
    wait_for(lambda: config_id not in live.device(vin).telemetry.streams, what="car stopped")

    async def stored() -> int:
        async with live.handle.runtime.sessions() as session:
            return len(await TelemetryRepository(session).configs_on(vin))

    assert live.call(stored()) == 0
