"""A simulated car's txids never repeat: ingest drops a (config, txid) it already stored."""

from __future__ import annotations

from tests.sim.test_telemetry_stream import CONFIG_ID, Car, config

from flotta.gateway import protocol
from flotta.gateway.protocol import FrameType
from flotta.sim.telemetry_stream import TelemetryStreams
from flotta.telemetry import wire

ODOMETER = {"Odometer": {"interval_seconds": 1}}


def txids(car: Car) -> list[bytes]:
    """The txids of every record the car sent, as ingest reads them (which refuses bad ones)."""
    return [wire.decode_stream(f.body)[1] for f in car.sent if f.type == FrameType.STREAM]


async def test_txids_stay_new_across_reconnects_config_changes_and_restarts() -> None:
    car = Car()
    await car.configure(config(ODOMETER), version=1)
    await car.drive(3)
    car.streams.unlinked()  # the link drops and comes back: the same config runs on
    try:
        await car.streams.linked()
    finally:
        await car.streams.stop()
    await car.drive(3)
    await car.configure(config({**ODOMETER, "Soc": {"interval_seconds": 1}}), version=2)
    await car.drive(3)
    # The simulator restarts; the gateway sends the config it has, version 2, again.
    car.streams = TelemetryStreams(
        car.vehicle.vin, car.clock, car._send, lambda: car.vehicle.sig, lambda: car.awake
    )
    await car.configure(config({**ODOMETER, "Soc": {"interval_seconds": 1}}), version=2)
    await car.drive(3)
    sent = txids(car)
    assert len(sent) >= 10
    assert len(set(sent)) == len(sent)


async def test_acks_of_an_earlier_version_do_not_acknowledge_the_new_one() -> None:
    car = Car()
    latest = {"delivery_policy": "latest"}
    await car.configure(config(ODOMETER, **latest), version=1)
    await car.drive(3)
    old = txids(car)
    car.sent.clear()
    await car.configure(config({**ODOMETER, "Soc": {"interval_seconds": 1}}, **latest), version=2)
    await car.drive(3)
    new = txids(car)
    assert len(new) >= 3
    late_acks = protocol.encode(FrameType.STREAM_ACKS, protocol.encode_txids(old), CONFIG_ID)
    assert await car.streams.handle(protocol.decode(late_acks, 10**6))
    car.sent.clear()
    try:
        await car.streams.linked()
    finally:
        await car.streams.stop()
    assert txids(car) == new  # all still awaiting their own acks, so all sent again
