"""Request/reply matching on one device session: replies, timeouts, late replies, hang-ups."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from flotta.devices.directory import VehicleRecord
from flotta.errors import DeviceTimeout, VehicleUnavailable
from flotta.gateway import protocol
from flotta.gateway.protocol import Frame, FrameType, PowerState
from flotta.gateway.session import DeviceSession

RECORD = VehicleRecord(1, 2, "5YJ3E1EBXTF100000", 1, "car", "model3_lr", "", "allowed", "h", {})


class FakeLink:
    """Records what the gateway sends; this is our own code's unit test, so a fake is fine."""

    def __init__(self) -> None:
        self.sent: list[Frame] = []

    async def send(self, data: bytes) -> None:
        self.sent.append(protocol.decode(data, 10_000))

    async def close(self, code: int, reason: str) -> None:
        pass


def session() -> tuple[DeviceSession, FakeLink]:
    link = FakeLink()
    return DeviceSession(RECORD, link.send, link.close, datetime.now(UTC)), link


async def test_reply_is_matched_by_correlation_id() -> None:
    device, link = session()
    pending = asyncio.create_task(device.request(FrameType.COMMAND, b"cmd", timeout_s=5))
    await asyncio.sleep(0)
    sent = link.sent[0]
    assert sent.type == FrameType.COMMAND and sent.body == b"cmd"
    assert not device.resolve(Frame(FrameType.REPLY, sent.correlation_id + 1, b"other"))
    assert device.resolve(Frame(FrameType.REPLY, sent.correlation_id, b"answer"))
    assert (await pending).body == b"answer"


async def test_silence_becomes_408_and_a_late_reply_is_dropped() -> None:
    device, link = session()
    with pytest.raises(DeviceTimeout) as raised:
        await device.request(FrameType.COMMAND, b"cmd", timeout_s=0.05)
    assert raised.value.status == 408
    assert not device.resolve(Frame(FrameType.REPLY, link.sent[0].correlation_id, b"late"))


async def test_hang_up_fails_every_waiting_request() -> None:
    device, _ = session()
    waiting = [
        asyncio.create_task(device.request(FrameType.COMMAND, b"x", timeout_s=5)) for _ in range(3)
    ]
    await asyncio.sleep(0)
    device.close()
    for task in waiting:
        with pytest.raises(VehicleUnavailable):
            await task


async def test_asleep_device_is_not_sent_commands() -> None:
    device, link = session()
    device.set_power(PowerState.ASLEEP)
    with pytest.raises(VehicleUnavailable):
        await device.request(FrameType.COMMAND, b"cmd", timeout_s=1)
    assert link.sent == []


async def test_wake_is_sent_once_while_waking() -> None:
    device, link = session()
    device.set_power(PowerState.ASLEEP)
    assert await device.wake(grace_s=0) == PowerState.ASLEEP
    assert await device.wake(grace_s=0) == PowerState.ASLEEP
    assert [f.type for f in link.sent] == [FrameType.WAKE]
    waiter = asyncio.create_task(device.wake(grace_s=5))
    await asyncio.sleep(0)
    device.set_power(PowerState.ONLINE)
    assert await waiter == PowerState.ONLINE


async def test_correlation_ids_wrap_without_zero() -> None:
    device, _ = session()
    device._next_id = protocol.MAX_CORRELATION_ID - 1
    assert [device._allocate_id() for _ in range(3)] == [protocol.MAX_CORRELATION_ID, 1, 2]
