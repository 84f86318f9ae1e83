"""End to end: when the app loses access to a streaming car, the config goes, the car is told
and stops, and no further record of that car reaches the app (issue 5). Simulated cars stream
every second to a private demo; the record log is what the app's streams and sinks read."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from sqlalchemy import select
from typer.testing import CliRunner

from flotta.auth.scopes import OWNER_SCOPES
from flotta.cli.main import app as cli
from flotta.devices.models import Vehicle
from flotta.devices.service import ensure_owner
from flotta.gateway.protocol import FrameType
from flotta.oauth.models import ConsentGrant, OAuthClient
from flotta.sharing.models import Driver
from flotta.telemetry.models import TelemetryConfigRow
from tests.live import LiveDemo, start_live_demo
from tests.telemetry.streaming_support import (
    api,
    ca_pem,
    config,
    loopback_listener,
    set_public_key,
    wait_for,
)
from tests.telemetry.test_ingest_support import device_link, frame_for, streaming_car

CREATE = "/api/1/vehicles/fleet_telemetry_config"
# Re-sent every second even when unchanged, so a car that keeps the config keeps streaming.
EVERY_SECOND = {"interval_seconds": 1, "resend_interval_seconds": 1}
QUIET_S = 2.5  # more than two resend periods


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveDemo]:
    live = start_live_demo(Path(tmp_path_factory.mktemp("telemetry-access")), vehicles=3)
    try:
        yield live
    finally:
        live.stop()


@pytest.fixture(scope="module")
def receiver() -> Iterator[int]:
    with loopback_listener() as port:
        yield port


def client_id(live: LiveDemo) -> str:
    return str(live.info["client_id"])


def records_of(live: LiveDemo, vin: str) -> int:
    """How many records of the car the app has received (its streams and sinks read these)."""
    streams = live.handle.runtime.streams
    assert streams is not None

    async def count() -> int:
        records = await streams.records.after(client_id(live), 0, 1_000_000)
        return sum(1 for record in records if record.vin == vin)

    return live.call(count())


def config_id(live: LiveDemo, vin: str) -> int | None:
    async def find() -> int | None:
        async with live.handle.runtime.sessions() as session:
            return await session.scalar(
                select(TelemetryConfigRow.id).where(
                    TelemetryConfigRow.client_id == client_id(live), TelemetryConfigRow.vin == vin
                )
            )

    return live.call(find())


def stream_from(
    live: LiveDemo, vin: str, port: int, fields: dict[str, Any], token: str | None = None
) -> int:
    """Configure the app on the car and wait until its records arrive; the config's id."""
    body = {"vins": [vin], "config": config(port, ca_pem(), fields=fields)}
    with api(live, token) as client:
        answer = client.post(CREATE, json=body)
    assert answer.json()["response"]["updated_vehicles"] == 1, answer.text
    found = config_id(live, vin)
    assert found is not None
    start = records_of(live, vin)
    wait_for(lambda: records_of(live, vin) >= start + 2, timeout_s=15, what="records streaming")
    return found


def assert_stream_stopped(live: LiveDemo, vin: str, config: int) -> None:
    """The car dropped the config and nothing more of it is stored for the app."""
    device = live.device(vin)
    try:
        wait_for(lambda: config not in device.telemetry.streams, timeout_s=15, what="car told")
    except AssertionError as missed:  # say where it stopped: not streaming, or not refused
        streams = live.handle.runtime.streams
        assert streams is not None
        raise AssertionError(
            f"{missed}; ingest: {streams.ingest.counters}; car linked: "
            f"{live.handle.runtime.hub.sessions.get(vin) is not None}"
        ) from None
    assert config_id(live, vin) is None
    before = records_of(live, vin)
    time.sleep(QUIET_S)
    assert records_of(live, vin) == before


def public_key_hex() -> str:
    point = ec.generate_private_key(ec.SECP256R1()).public_key()
    return point.public_bytes(Encoding.X962, PublicFormat.UncompressedPoint).hex()


def test_the_owner_removing_the_apps_key_stops_its_stream(demo: LiveDemo, receiver: int) -> None:
    vin = demo.vins[0]
    key = public_key_hex()
    set_public_key(demo, client_id(demo), key)
    streaming = stream_from(demo, vin, receiver, {"Odometer": EVERY_SECOND})
    owner = demo.mint(["vehicle_cmds", "vehicle_device_data"])  # the owner's own token
    path = f"/flotta/v1/vehicles/{vin}/keys/{key}"
    with api(demo) as app_client:
        refused = app_client.delete(path)  # a third-party app cannot remove keys
    with api(demo, owner) as client:
        removed = client.delete(path)
        again = client.delete(path)
        malformed = client.delete(f"/flotta/v1/vehicles/{vin}/keys/04abc")
    assert refused.status_code == 403 and refused.json()["error"] == "forbidden"
    assert removed.status_code == 200, removed.text
    assert removed.json()["response"] == {
        "vin": vin, "public_key": key, "key_paired": False, "telemetry_configs_removed": 1,
    }  # fmt: skip
    assert again.status_code == 404 and malformed.status_code == 400
    assert_stream_stopped(demo, vin, streaming)
    with api(demo) as client:
        status = client.post("/api/1/vehicles/fleet_status", json={"vins": [vin]}).json()
        retry = client.post(CREATE, json={"vins": [vin], "config": config(receiver, ca_pem())})
    assert status["response"]["unpaired_vins"] == [vin]
    assert retry.json()["response"]["skipped_vehicles"]["missing_key"] == [vin]
    with api(demo, owner) as client:
        assert client.put(path).json()["response"]["key_paired"] is True
    with api(demo) as client:
        status = client.post("/api/1/vehicles/fleet_status", json={"vins": [vin]}).json()
    assert status["response"]["key_paired_vins"] == [vin]


def _driver_with_consent(
    live: LiveDemo, vin: str, email: str = "dana@example.com"
) -> tuple[int, str]:
    """A driver of the car who consented to the demo app with every scope; the owner's own
    consent is narrowed to leave out vehicle_location. Returns the driver's id and token."""
    runtime = live.handle.runtime

    async def setup() -> tuple[int, str]:
        async with runtime.sessions() as session, session.begin():
            car = await session.scalar(select(Vehicle).where(Vehicle.vin == vin))
            app = await session.scalar(
                select(OAuthClient).where(OAuthClient.client_id == client_id(live))
            )
            assert car is not None and app is not None
            dana = await ensure_owner(session, email, "Dana Driver", runtime.clock)
            now = runtime.clock.now()
            session.add(Driver(vehicle_id=car.id, user_id=dana.id, created_at=now))
            session.add(
                ConsentGrant(
                    user_id=dana.id, client_pk=app.id, scopes=list(OWNER_SCOPES),
                    devices=[f"vehicle:{car.id}"], created_at=now, updated_at=now,
                )
            )  # fmt: skip
            owners = await session.scalars(
                select(ConsentGrant).where(
                    ConsentGrant.user_id == car.owner_id, ConsentGrant.client_pk == app.id
                )
            )
            for grant in owners:
                grant.scopes = [s for s in grant.scopes if s != "vehicle_location"]
            return dana.id, dana.uuid

    dana_id, subject = live.call(setup())
    runtime.directory.forget()
    token = runtime.tokens.mint(subject, list(OWNER_SCOPES), client_id=client_id(live))
    return dana_id, token


def test_removing_the_driver_whose_consent_a_stream_relied_on_stops_it(
    demo: LiveDemo, receiver: int
) -> None:
    vin = demo.vins[1]
    dana_id, dana = _driver_with_consent(demo, vin)
    fields = {"Location": EVERY_SECOND, "Odometer": EVERY_SECOND}
    # Only Dana grants vehicle_location; the owner's consent lets the car's records through.
    streaming = stream_from(demo, vin, receiver, fields, token=dana)
    with api(demo) as owner:
        answer = owner.delete(f"/api/1/vehicles/{vin}/drivers", params={"share_user_id": dana_id})
        shown = owner.get(f"/api/1/vehicles/{vin}/fleet_telemetry_config").json()["response"]
    assert answer.json() == {"response": "ok"}
    assert shown["config"] is None
    assert_stream_stopped(demo, vin, streaming)


def test_transferring_the_car_with_the_cli_stops_every_stream(
    demo: LiveDemo, receiver: int
) -> None:
    vin = demo.vins[2]
    streaming = stream_from(demo, vin, receiver, {"Odometer": EVERY_SECOND})
    runtime = demo.handle.runtime

    async def buyer() -> str:
        async with runtime.sessions() as session, session.begin():
            return (await ensure_owner(session, "buyer@example.com", "B", runtime.clock)).email

    email = demo.call(buyer())
    done = CliRunner().invoke(
        cli,
        ["admin", "vehicles", "transfer", vin, "--to", email, "--data-dir", str(demo.data_dir)],
    )
    assert done.exit_code == 0, done.output
    assert "1 telemetry config removed" in done.output
    # Another process changed the database: this server's ingest notices and tells the car.
    assert_stream_stopped(demo, vin, streaming)
    runtime.directory.forget()
    with api(demo) as client:
        assert client.get(f"/api/1/vehicles/{vin}").status_code == 404


def test_deleting_the_car_with_the_cli_tells_the_car_and_keeps_nothing_more(
    demo: LiveDemo,
) -> None:
    live = demo  # private: the shared demo's other cars need not see a car vanish
    car = streaming_car(live)
    streams = live.handle.runtime.streams
    assert streams is not None

    async def kept() -> int:
        return len(await streams.records.after(car.client_id, 0, 1_000))

    async def before_and_after() -> tuple[int, int, int]:
        async with device_link(live, car) as link:
            await link.ws.send(frame_for(car, 1, signals=1))
            await link.acks(1)
            stored = await kept()
            done = await asyncio.to_thread(
                CliRunner().invoke,
                cli,
                ["admin", "vehicles", "delete", car.vin, "--yes", "--data-dir", str(live.data_dir)],
            )
            assert done.exit_code == 0, done.output
            assert "1 telemetry config removed" in done.output
            seq = 2
            async with asyncio.timeout(15):  # the server notices within its cache's lifetime
                while True:
                    await link.ws.send(frame_for(car, seq, signals=1))
                    seq += 1
                    with contextlib.suppress(TimeoutError):
                        frame = await link.next_frame(within_s=0.3)
                        if frame.type == FrameType.TELEMETRY_CONFIG_REMOVED:
                            assert frame.correlation_id == car.config_id
                            break
            told = await kept()
            await link.ws.send(frame_for(car, seq, signals=1))
            await asyncio.sleep(1.0)
            return stored, told, await kept()

    stored, told, final = asyncio.run(before_and_after())
    assert stored == 1 and final == told


def _owner_leaves_out(live: LiveDemo, vin: str) -> None:
    """The owner's consent to the demo app no longer covers this car."""
    runtime = live.handle.runtime

    async def narrow() -> None:
        async with runtime.sessions() as session, session.begin():
            car = await session.scalar(select(Vehicle).where(Vehicle.vin == vin))
            app = await session.scalar(
                select(OAuthClient).where(OAuthClient.client_id == client_id(live))
            )
            assert car is not None and app is not None
            grants = await session.scalars(
                select(ConsentGrant).where(
                    ConsentGrant.user_id == car.owner_id, ConsentGrant.client_pk == app.id
                )
            )
            for grant in grants:
                grant.devices = [d for d in grant.devices if d != f"vehicle:{car.id}"]

    live.call(narrow())
    runtime.directory.forget()


def test_a_drivers_consent_alone_lets_the_stream_through(demo: LiveDemo, receiver: int) -> None:
    """The config a driver set up streams although the owner never consented for this car."""
    vin = demo.vins[0]  # its key is paired again at the end of the key test
    _, dan = _driver_with_consent(demo, vin, "dan@example.com")
    _owner_leaves_out(demo, vin)
    streaming = stream_from(demo, vin, receiver, {"Odometer": EVERY_SECOND}, token=dan)
    assert config_id(demo, vin) == streaming
