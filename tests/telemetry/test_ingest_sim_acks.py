"""The simulated car reads batched acks as it reads single ones (it runs `latest` configs)."""

from __future__ import annotations

from flotta.gateway import protocol
from flotta.gateway.protocol import FrameType
from tests.sim.test_telemetry_stream import CONFIG_ID, Car, config


async def test_a_stream_acks_frame_acknowledges_each_txid_it_lists() -> None:
    car = Car()
    await car.configure(config({"Odometer": {"interval_seconds": 1}}, delivery_policy="latest"))
    await car.drive(5)
    first = car.records()
    assert len(first) >= 4
    body = protocol.encode_txids([first[0].txid, first[2].txid, b"not-ours"])
    frame = protocol.encode(FrameType.STREAM_ACKS, body, CONFIG_ID)
    assert await car.streams.handle(protocol.decode(frame, 10**6))
    cut = protocol.encode(FrameType.STREAM_ACKS, body[:-1], CONFIG_ID)
    assert await car.streams.handle(protocol.decode(cut, 10**6))  # logged, acks nothing
    car.sent.clear()
    try:
        await car.streams.linked()
    finally:
        await car.streams.stop()
    assert [r.txid for r in car.records()] == [r.txid for r in first if r.txid not in
                                                (first[0].txid, first[2].txid)]  # fmt: skip
