"""The device link as a device sees it: authentication, framing errors, presence records."""

from __future__ import annotations

import asyncio

import pytest
import websockets
from sqlalchemy import select

from flotta.devices.models import PresenceEvent
from flotta.devices.service import ensure_owner, provision_vehicle
from flotta.gateway import protocol
from flotta.gateway.protocol import FrameType
from flotta.sim.fleet import load_identities
from flotta.sim.vehicle_models import make_vin
from tests.live import LiveDemo


def ws_url(live: LiveDemo) -> str:
    return live.base_url.replace("http", "ws", 1) + "/gateway/v1/connect"


async def _close_code(live: LiveDemo, credential: str) -> int | None:
    async with websockets.connect(
        ws_url(live), additional_headers={"Authorization": f"Bearer {credential}"}
    ) as ws:
        with pytest.raises(websockets.ConnectionClosed):
            await asyncio.wait_for(ws.recv(), 5)
        return ws.close_code


@pytest.mark.parametrize(
    "credential",
    ["", "garbage", "fdc_5YJ3E1EBXTF100000_wrongsecret", "fdc_SHORT_secret"],
)
async def test_bad_device_credentials_are_closed_with_4401(live: LiveDemo, credential: str) -> None:
    assert await _close_code(live, credential) == 4401


async def test_missing_hello_closes_with_1008(live: LiveDemo) -> None:
    identity = load_identities(live.data_dir / "sim-credentials.json")[3]
    async with websockets.connect(
        ws_url(live), additional_headers={"Authorization": f"Bearer {identity.credential}"}
    ) as ws:
        await ws.send(protocol.encode(FrameType.STATE, b"\x00"))
        error = protocol.decode(await asyncio.wait_for(ws.recv(), 5), 10_000)  # type: ignore[arg-type]
        assert error.type == FrameType.ERROR
        assert b"HELLO" in error.body
        with pytest.raises(websockets.ConnectionClosed):
            await asyncio.wait_for(ws.recv(), 5)
        assert ws.close_code == 1008


def provision_spare(live: LiveDemo, serial: int) -> tuple[str, str]:
    """A vehicle with no simulator behind it, so the test can speak for it."""
    runtime = live.handle.runtime

    async def make() -> tuple[str, str]:
        async with runtime.sessions() as session, session.begin():
            owner = await ensure_owner(session, "spare@flotta.test", "Spare", runtime.clock)
            vin = make_vin("modely", serial)
            made = await provision_vehicle(
                session,
                owner=owner,
                vin=vin,
                model="modely",
                display_name="spare",
                option_codes="",
                config={},
                secret_key=runtime.settings.secret_key,
                clock=runtime.clock,
            )
        runtime.directory.forget()
        return vin, made.credential

    return live.call(make())


def test_malformed_frames_get_error_frames_and_the_link_stays(live: LiveDemo) -> None:
    vin, credential = provision_spare(live, 900_001)
    live.call(_speak_badly(live, vin, credential))


def test_newer_link_replaces_older_one(live: LiveDemo) -> None:
    vin, credential = provision_spare(live, 900_002)

    async def both() -> None:
        headers = {"Authorization": f"Bearer {credential}"}
        async with websockets.connect(ws_url(live), additional_headers=headers) as first:
            await first.send(protocol.encode_json(FrameType.HELLO, {"power": "online"}))
            await asyncio.wait_for(first.recv(), 5)
            async with websockets.connect(ws_url(live), additional_headers=headers) as second:
                await second.send(protocol.encode_json(FrameType.HELLO, {"power": "asleep"}))
                await asyncio.wait_for(second.recv(), 5)
                # The first link may still get what the gateway sends every new link (its
                # telemetry configs) before it is closed.
                with pytest.raises(websockets.ConnectionClosed):
                    async with asyncio.timeout(5):
                        while True:
                            await first.recv()
                assert first.close_code == 4409
                assert live.handle.runtime.hub.state_of(vin) == "asleep"

    asyncio.run(both())


async def _speak_badly(live: LiveDemo, vin: str, credential: str) -> None:
    async with websockets.connect(
        ws_url(live), additional_headers={"Authorization": f"Bearer {credential}"}
    ) as ws:
        await ws.send(protocol.encode_json(FrameType.HELLO, {"power": "online", "config": {}}))
        welcome = protocol.decode(await asyncio.wait_for(ws.recv(), 5), 10_000)  # type: ignore[arg-type]
        assert welcome.type == FrameType.WELCOME
        # Then the car's telemetry configs: none, so only the list of those it may keep.
        reconcile = protocol.decode(await asyncio.wait_for(ws.recv(), 5), 10_000)  # type: ignore[arg-type]
        assert reconcile.type == FrameType.TELEMETRY_CONFIG_REMOVED
        assert reconcile.body == b'{"keep":[]}'
        bad_frames = {
            b"\x01": b"shorter than the 5-byte header",
            protocol.encode(FrameType.STATE, b"\xff\xff\xff"): b"not a telemetry Payload",
            bytes([99, 0, 0, 0, 0]): b"unknown frame type 99",
            protocol.encode(FrameType.PRESENCE, b"\x09"): b"PRESENCE body",
            protocol.encode(FrameType.WAKE): b"may not send WAKE",
        }
        for frame, expected in bad_frames.items():
            await ws.send(frame)
            reply = protocol.decode(await asyncio.wait_for(ws.recv(), 5), 10_000)  # type: ignore[arg-type]
            assert reply.type == FrameType.ERROR
            assert expected in reply.body, (frame, reply.body)
        await ws.send("text is not allowed")
        reply = protocol.decode(await asyncio.wait_for(ws.recv(), 5), 10_000)  # type: ignore[arg-type]
        assert b"binary" in reply.body
        assert live.handle.runtime.hub.state_of(vin) == "online"


def test_connects_and_disconnects_are_recorded(live: LiveDemo) -> None:
    runtime = live.handle.runtime
    vehicle_id = live.call(runtime.directory.vehicle(live.vins[0])).id  # type: ignore[union-attr]

    async def kinds() -> list[str]:
        await runtime.presence.stop()  # flush what is queued
        runtime.presence.start()
        async with runtime.sessions() as session:
            rows = await session.execute(
                select(PresenceEvent.kind).where(PresenceEvent.vehicle_id == vehicle_id)
            )
            return list(rows.scalars())

    assert "connected" in live.call(kinds())
