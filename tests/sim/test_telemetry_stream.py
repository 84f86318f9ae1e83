"""A simulated car's streaming: configs acked, rules kept on simulated time, acks, resends."""

from __future__ import annotations

import itertools
import random
from datetime import UTC, datetime
from typing import Any

import orjson

from flotta.clock import ManualClock
from flotta.gateway import protocol
from flotta.gateway.protocol import Frame, FrameType
from flotta.sim.telemetry_stream import TelemetryStreams
from flotta.sim.vehicle_models import make_vin
from flotta.sim.vehicle_state import SimVehicle
from flotta.telemetry import wire

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
CONFIG_ID = 7


class Car:
    """A driving car, its streams and every frame it sent, on a clock the test moves."""

    def __init__(self) -> None:
        self.clock = ManualClock(T0)
        self.vehicle = SimVehicle(make_vin("model3_lr", 1), "model3_lr", random.Random(1), T0)
        self.vehicle.start_drive()
        self.sent: list[Frame] = []
        self.awake = True
        self.streams = TelemetryStreams(
            self.vehicle.vin, self.clock, self._send, lambda: self.vehicle.sig, lambda: self.awake
        )

    async def _send(self, data: bytes) -> None:
        self.sent.append(protocol.decode(data, 1_000_000))

    async def configure(self, config: dict[str, Any], version: int = 1) -> dict[str, Any]:
        body = {"client_id": "app", "version": version, "config": config}
        await self.streams.handle(
            protocol.decode(
                protocol.encode_json(FrameType.TELEMETRY_CONFIG, body, CONFIG_ID), 10**6
            )
        )
        ack = self.sent.pop()
        assert ack.type == FrameType.TELEMETRY_CONFIG_ACK and ack.correlation_id == CONFIG_ID
        return protocol.decode_json(ack)

    async def drive(self, seconds: float) -> None:
        """Advance in the collector's 500 ms periods, as the car's loop does."""
        for _ in range(round(seconds / 0.5)):
            self.clock.advance(0.5)
            self.vehicle.advance(self.clock.now())
            await self.streams.flush()

    def records(self) -> list[wire.DecodedRecord]:
        return [wire.decode_record(f.body) for f in self.sent if f.type == FrameType.STREAM]

    def values(self, field: str) -> list[tuple[float, Any]]:
        out = []
        for record in self.records():
            found = wire.data_values(record.message)
            if field in found:
                out.append((record.message.created_at.ToSeconds(), found[field]))
        return out


def config(fields: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"hostname": "t.example.com", "port": 443, "ca": "", "fields": fields, **extra}


async def test_a_10_s_interval_on_a_fast_changing_signal_emits_at_most_once_per_10_s() -> None:
    car = Car()
    ack = await car.configure(config({"Odometer": {"interval_seconds": 10}}, prefer_typed=True))
    assert ack == {"version": 1, "ok": True, "error": None}
    changes = set()
    for _ in range(240):  # two minutes of driving; the odometer (0.01 mi) moves every second
        await car.drive(0.5)
        changes.add(car.vehicle.sig["Odometer"])
    assert len(changes) > 100
    sent = car.values("Odometer")
    times = [t for t, _ in sent]
    assert all(b - a >= 10 for a, b in itertools.pairwise(times))
    assert 11 <= len(sent) <= 13  # once at start, then once per 10 s
    # typed (prefer_typed), and the value is the car's own state at that moment
    assert all(isinstance(value, float) for _, value in sent)
    assert sent[-1][1] <= car.vehicle.sig["Odometer"]


async def test_minimum_delta_suppresses_small_moves() -> None:
    car = Car()
    rule = {"interval_seconds": 1, "minimum_delta": 1}
    await car.configure(config({"Odometer": rule, "Soc": {"interval_seconds": 1}}))
    await car.drive(120)
    odometer = [float(v) for _, v in car.values("Odometer")]
    assert len(odometer) >= 2
    assert all(b - a >= 1 for a, b in itertools.pairwise(odometer))
    assert len(car.values("Soc")) > len(odometer)  # no delta: every change, once a second


async def test_a_field_the_car_cannot_stream_is_refused_with_its_reason() -> None:
    car = Car()
    ack = await car.configure(config({"SemitruckTpmsPressureRe1L0": {"interval_seconds": 5}}))
    assert ack["ok"] is False
    assert "cannot stream SemitruckTpmsPressureRe1L0" in ack["error"]
    await car.drive(5)
    assert car.records() == []


async def test_latest_policy_resends_what_was_not_acknowledged_on_reconnect() -> None:
    car = Car()
    await car.configure(config({"Odometer": {"interval_seconds": 1}}, delivery_policy="latest"))
    await car.drive(3)
    first = car.records()
    assert len(first) >= 3
    acked = first[0].txid
    ack = protocol.encode(FrameType.STREAM_ACK, acked, CONFIG_ID)
    assert await car.streams.handle(protocol.decode(ack, 10**6))
    car.sent.clear()
    try:
        await car.streams.linked()
    finally:
        await car.streams.stop()
    resent = car.records()
    assert [r.txid for r in resent] == [r.txid for r in first[1:]]
    assert all(r.message.is_resend for r in resent)


async def test_removal_stops_the_stream_and_reconciling_drops_unknown_configs() -> None:
    car = Car()
    await car.configure(config({"Odometer": {"interval_seconds": 1}}))
    await car.drive(2)
    assert car.records()
    removed = protocol.encode(FrameType.TELEMETRY_CONFIG_REMOVED, b"", CONFIG_ID)
    await car.streams.handle(protocol.decode(removed, 10**6))
    car.sent.clear()
    await car.drive(5)
    assert car.records() == []
    await car.configure(config({"Odometer": {"interval_seconds": 1}}))
    keep_none = protocol.encode(FrameType.TELEMETRY_CONFIG_REMOVED, orjson.dumps({"keep": [99]}), 0)
    await car.streams.handle(protocol.decode(keep_none, 10**6))
    assert car.streams.streams == {}


async def test_an_asleep_car_streams_nothing() -> None:
    car = Car()
    await car.configure(config({"Odometer": {"interval_seconds": 1}}))
    car.awake = False
    await car.drive(5)
    assert car.records() == []
