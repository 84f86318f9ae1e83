"""Shared pieces for the ingest, stream and dispatch tests: a car with a consented, billed app
and a config, and a small device client that speaks the gateway protocol like the simulator."""

from __future__ import annotations

import asyncio
import secrets
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from itertools import groupby
from typing import Any

import websockets
from sqlalchemy.ext.asyncio import AsyncSession
from websockets.asyncio.client import ClientConnection

from flotta.auth.scopes import OWNER_SCOPES
from flotta.devices.service import ensure_owner, provision_vehicle
from flotta.gateway import protocol
from flotta.gateway.protocol import Frame, FrameType
from flotta.oauth.grants import oauth_service
from flotta.oauth.models import ConsentGrant
from flotta.sim.vehicle_models import make_vin
from flotta.telemetry import wire
from flotta.telemetry.emitter import TelemetryRecord
from flotta.telemetry.models import TelemetryConfigRow
from flotta.telemetry.record_groups import NewGroup, stream_records
from flotta.telemetry.recordlog import RecordLog
from flotta.telemetry.records import StreamRecord
from tests.live import LiveDemo


@dataclass(frozen=True)
class StreamingCar:
    """A car with no simulator behind it, a billed third-party app it consented to, a config."""

    vin: str
    credential: str
    client_id: str
    config_id: int
    developer_id: int
    grant_id: int


async def add_streaming_car(s: AsyncSession, runtime: Any) -> StreamingCar:
    """In `s`: a car, a billed third-party app its owner consented to, and a synced config.
    `runtime` needs `settings` and `clock` (a live Runtime, or a namespace holding them)."""
    clock, settings = runtime.clock, runtime.settings
    now, tag = clock.now(), uuid.uuid4().hex[:8]
    owner = await ensure_owner(s, f"owner-{tag}@example.com", "Owner", clock)
    developer = await ensure_owner(s, f"dev-{tag}@example.com", "Dev", clock)
    vin = make_vin("modely", secrets.randbelow(800_000) + 100_000)
    made = await provision_vehicle(
        s, owner=owner, vin=vin, model="modely", display_name="streamer", option_codes="",
        config={}, secret_key=settings.secret_key, clock=clock,
    )  # fmt: skip
    app, _ = await oauth_service(s, runtime).register_client(
        name=f"Streamer {tag}", owner_id=developer.id, confidential=True,
        scopes=OWNER_SCOPES, redirect_uris=["https://app.example.com/cb"],
    )  # fmt: skip
    app.status, app.partner_registered_at = "approved", now
    await s.flush()
    grant = ConsentGrant(
        user_id=owner.id, client_pk=app.id, scopes=list(OWNER_SCOPES),
        devices=[f"vehicle:{made.vehicle.id}"], created_at=now, updated_at=now,
    )  # fmt: skip
    config = TelemetryConfigRow(
        client_id=app.client_id, vin=vin, config={"fields": {"VehicleSpeed": {}}},
        version=1, status="synced", created_at=now, updated_at=now, synced_at=now,
    )  # fmt: skip
    s.add_all([grant, config])
    await s.flush()
    return StreamingCar(vin, made.credential, app.client_id, config.id, developer.id, grant.id)


def streaming_car(live: LiveDemo) -> StreamingCar:
    runtime = live.handle.runtime

    async def make() -> StreamingCar:
        async with runtime.sessions() as s, s.begin():
            car = await add_streaming_car(s, runtime)
        runtime.directory.forget()
        return car

    return live.call(make())


def partner_token(live: LiveDemo, client_id: str) -> str:
    return str(live.handle.runtime.tokens.mint(client_id, [], client_id=client_id, partner=True))


def frame_for(car: StreamingCar, seq: int, signals: int, *, is_resend: bool = False) -> bytes:
    """A STREAM frame carrying `signals` data for the car's config."""
    names = ["VehicleSpeed", "Odometer", "BatteryLevel", "EstBatteryRange", "Gear"][:signals]
    values: dict[str, Any] = {n: float(seq + i) for i, n in enumerate(names) if n != "Gear"}
    if "Gear" in names:
        values["Gear"] = "D"
    record = TelemetryRecord(seq=seq, created_at_s=1_790_000_000.0 + seq, data=values,
                             is_resend=is_resend)  # fmt: skip
    body = wire.encode_data(record, vin=car.vin, prefer_typed=True)
    return protocol.encode(FrameType.STREAM, body, car.config_id)


class DeviceClient:
    """A device link as the simulator opens one; frames the gateway sends are collected."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws

    async def next_frame(self, within_s: float = 10.0) -> Frame:
        data = await asyncio.wait_for(self.ws.recv(), within_s)
        assert isinstance(data, bytes)
        return protocol.decode(data, 10_000_000)

    async def acks(self, count: int, within_s: float = 15.0) -> list[bytes]:
        """The next `count` acknowledged txids, from STREAM_ACK or STREAM_ACKS frames (other
        frames are skipped), bounded in time."""
        got: list[bytes] = []
        async with asyncio.timeout(within_s):
            while len(got) < count:
                frame = await self.next_frame(within_s)
                if frame.type == FrameType.STREAM_ACK:
                    got.append(frame.body)
                elif frame.type == FrameType.STREAM_ACKS:
                    got += protocol.decode_txids(frame.body)
        return got


@asynccontextmanager
async def device_link(
    live: LiveDemo, car: StreamingCar, *, batched_acks: bool = False
) -> AsyncIterator[DeviceClient]:
    """A device link for the car; `batched_acks` asks for STREAM_ACKS frames in HELLO."""
    url = live.base_url.replace("http", "ws", 1) + "/gateway/v1/connect"
    headers = {"Authorization": f"Bearer {car.credential}"}
    hello: dict[str, Any] = {"power": "online", "config": {}}
    if batched_acks:
        hello["stream_acks"] = "batched"
    async with websockets.connect(url, additional_headers=headers, max_size=None) as ws:
        await ws.send(protocol.encode_json(FrameType.HELLO, hello))
        client = DeviceClient(ws)
        welcome = await client.next_frame()
        assert welcome.type == FrameType.WELCOME
        yield client


@dataclass(frozen=True)
class LoggedRecord:
    """A record a test writes straight into the record log, as another process's ingest would."""

    client_id: str
    vin: str
    topic: str
    txid: str
    signals: int
    created_at: datetime
    payload: bytes


async def append_records(log: RecordLog, records: Sequence[LoggedRecord]) -> list[StreamRecord]:
    """Commit records as ingest does (consecutive ones of one app, car and time as one group,
    a commit each); return them with their cursors, in order."""
    stored: list[StreamRecord] = []
    for _, run in groupby(records, key=lambda r: (r.client_id, r.vin, r.created_at)):
        batch = list(run)
        group = NewGroup(batch[0].client_id, batch[0].vin)
        for r in batch:
            group.add(r.txid.encode(), r.topic, r.signals, r.payload)
        [first] = await log.commit([group], batch[0].created_at)
        stored += stream_records(group, first, batch[0].created_at)
    return stored
