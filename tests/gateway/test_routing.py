"""Two hubs sharing one bus and kv, as two processes would: routing without any server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, cast

import pytest

from flotta.adapters.bus_memory import MemoryBus
from flotta.adapters.kv_memory import MemoryKV
from flotta.clock import ManualClock
from flotta.devices.directory import VehicleRecord
from flotta.errors import DeviceTimeout, VehicleUnavailable
from flotta.gateway import protocol
from flotta.gateway.hub import Hub
from flotta.gateway.link_io import LinkClosed
from flotta.gateway.presence import PresenceRecorder
from flotta.gateway.protocol import Frame, FrameType, PowerState
from flotta.settings import GatewaySettings
from flotta.vehicles.signals import payload_from_dict

VIN = "5YJ3E1EB0TF900001"
TTL_S = 3.0
WAIT_S = 5.0


class CountingBus(MemoryBus):
    """The in-process bus, counting requests, to prove the local path never uses it."""

    def __init__(self) -> None:
        super().__init__()
        self.requests = 0

    async def request(self, subject: str, data: bytes, timeout_s: float) -> bytes:
        self.requests += 1
        return await super().request(subject, data, timeout_s)


@dataclass
class Cluster:
    bus: CountingBus
    kv: MemoryKV
    kv_clock: ManualClock
    a: Hub
    b: Hub
    clock_a: ManualClock


def record(vin: str = VIN) -> VehicleRecord:
    return VehicleRecord(1, 1001, vin, 1, "Test car", "model3_lr", "", "off", "", config={})


class FakeDevice:
    """A device link driven by the test: answers commands and wakes like firmware would."""

    def __init__(self, hub: Hub, *, power: str = "online", answer: bool = True) -> None:
        self.hub = hub
        self.power = power
        self.answer = answer
        self.frames: asyncio.Queue[bytes | None] = asyncio.Queue()
        self.received: list[Frame] = []
        self.closed: tuple[int, str] | None = None
        self.welcomed = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    async def connect(self) -> FakeDevice:
        hello = {"power": self.power, "firmware": "2026.2.1", "config": {"car_type": "model3"}}
        self.frames.put_nowait(protocol.encode_json(FrameType.HELLO, hello))
        self.task = asyncio.create_task(
            self.hub.serve(record(), self.frames.get, self._on_frame, self._close, "test")
        )
        await asyncio.wait_for(self.welcomed.wait(), WAIT_S)
        return self

    async def _on_frame(self, data: bytes) -> None:
        frame = protocol.decode(data, 1_000_000)
        self.received.append(frame)
        if frame.type == FrameType.WELCOME:
            self.welcomed.set()
        elif frame.type == FrameType.COMMAND and self.answer:
            reply = protocol.encode(FrameType.REPLY, b"done:" + frame.body, frame.correlation_id)
            self.frames.put_nowait(reply)
        elif frame.type == FrameType.WAKE:
            self.send_power(PowerState.ONLINE)

    async def _close(self, code: int, reason: str) -> None:
        self.closed = (code, reason)
        self.frames.put_nowait(None)

    def send_power(self, power: PowerState) -> None:
        self.frames.put_nowait(protocol.encode(FrameType.PRESENCE, bytes([power])))

    def send_state(self, values: dict[str, Any]) -> None:
        payload = payload_from_dict(VIN, self.hub.clock.now(), values)
        self.frames.put_nowait(protocol.encode(FrameType.STATE, payload.SerializeToString()))

    async def disconnect(self) -> None:
        self.frames.put_nowait(None)
        assert self.task is not None
        await asyncio.wait_for(self.task, WAIT_S)


def make_hub(bus: MemoryBus, kv: MemoryKV, clock: ManualClock, timeout_s: float = 1.0) -> Hub:
    settings = GatewaySettings(command_timeout_s=timeout_s, presence_ttl_s=TTL_S)
    # Never started: presence history is not what these tests are about.
    presence = PresenceRecorder(cast(Any, None))
    hub = Hub(settings, clock, presence, bus=bus, kv=kv)
    hub.start()
    return hub


@pytest.fixture
async def cluster() -> AsyncIterator[Cluster]:
    bus, kv_clock, clock_a = CountingBus(), ManualClock(), ManualClock()
    kv = MemoryKV(kv_clock)
    a = make_hub(bus, kv, clock_a, timeout_s=0.3)
    b = make_hub(bus, kv, ManualClock())
    try:
        yield Cluster(bus, kv, kv_clock, a, b, clock_a)
    finally:
        await a.stop()
        await b.stop()
        await bus.close()


async def eventually(check: Callable[[], Awaitable[bool]]) -> None:
    """Poll an async predicate, bounded by count and by WAIT_S."""
    async with asyncio.timeout(WAIT_S):
        for _ in range(int(WAIT_S / 0.01)):
            if await check():
                return
            await asyncio.sleep(0.01)
    raise AssertionError("the condition never held")


async def test_another_process_sees_state_and_mirror(cluster: Cluster) -> None:
    device = await FakeDevice(cluster.a).connect()
    device.send_state({"Odometer": 1234.5, "Locked": True})

    async def mirrored() -> bool:
        mirror, _ = await cluster.b.mirror_of(VIN)
        return mirror.get("Odometer") == 1234.5

    await eventually(mirrored)
    mirror, config = await cluster.b.mirror_of(VIN)
    assert mirror["Locked"] is True
    assert config == {"car_type": "model3"}
    assert (await cluster.b.view(VIN)).firmware == "2026.2.1"
    assert cluster.b.state_of(VIN) == "offline"  # the sync view is this process's only
    assert await cluster.b.states([VIN, "5YJ3E1EB0TF999999"]) == ["online", "offline"]


async def test_commands_reach_the_vehicle_through_the_owning_process(cluster: Cluster) -> None:
    await FakeDevice(cluster.a).connect()
    assert await cluster.b.command(VIN, b"routable") == b"done:routable"


async def test_errors_come_back_as_the_same_flotta_errors(cluster: Cluster) -> None:
    await FakeDevice(cluster.a, answer=False).connect()
    with pytest.raises(DeviceTimeout) as timed_out:
        await cluster.b.command(VIN, b"ignored")
    assert timed_out.value.status == 408
    assert "did not respond" in timed_out.value.key


async def test_sleep_and_wake_across_processes(cluster: Cluster) -> None:
    device = await FakeDevice(cluster.a, power="asleep").connect()
    assert await cluster.b.state(VIN) == "asleep"
    with pytest.raises(VehicleUnavailable) as asleep:
        await cluster.b.command(VIN, b"x")
    assert asleep.value.key == VehicleUnavailable.key
    with pytest.raises(VehicleUnavailable):
        await cluster.b.mirror_of(VIN)
    assert (await cluster.b.view(VIN, require_online=False)).state == "asleep"
    assert await cluster.b.wake(VIN, 2.0) == "online"
    assert any(f.type == FrameType.WAKE for f in device.received)
    assert await cluster.b.state(VIN) == "online"


async def test_a_disconnected_vehicle_is_offline_everywhere(cluster: Cluster) -> None:
    device = await FakeDevice(cluster.a).connect()
    assert await cluster.b.state(VIN) == "online"
    await device.disconnect()
    assert await cluster.b.state(VIN) == "offline"
    assert await cluster.b.wake(VIN, 0.1) == "offline"
    with pytest.raises(VehicleUnavailable):
        await cluster.b.command(VIN, b"x")


async def test_presence_outlives_a_crashed_process_by_at_most_its_ttl(cluster: Cluster) -> None:
    await FakeDevice(cluster.a).connect()
    # While A lives, its heartbeat keeps the car online across many TTLs.
    for _ in range(12):
        cluster.clock_a.advance(TTL_S / 4)
        cluster.kv_clock.advance(TTL_S / 4)
        for _ in range(5):
            await asyncio.sleep(0)  # let the heartbeat run
    assert await cluster.b.state(VIN) == "online"
    # A "crashes": its clock stops, so no heartbeat, and its link is never released.
    cluster.kv_clock.advance(TTL_S * 0.9)
    assert await cluster.b.state(VIN) == "online"
    cluster.kv_clock.advance(TTL_S * 0.2)
    assert await cluster.b.state(VIN) == "offline"


async def test_a_newer_link_on_another_process_replaces_the_older(cluster: Cluster) -> None:
    older = await FakeDevice(cluster.a).connect()
    cast(ManualClock, cluster.b.clock).advance(1)  # B's link is the newer one
    await FakeDevice(cluster.b, power="asleep").connect()

    async def evicted() -> bool:
        return older.task is not None and older.task.done()

    await eventually(evicted)
    assert older.closed == (4409, "replaced by a newer connection")
    # A's clean-up did not erase B's presence record.
    assert await cluster.a.state(VIN) == "asleep"
    assert VIN not in cluster.a.sessions


async def test_a_local_vehicle_is_served_from_memory_without_the_bus(cluster: Cluster) -> None:
    device = await FakeDevice(cluster.a).connect()
    session = cluster.a.sessions[VIN]
    assert await cluster.a.command(VIN, b"x") == b"done:x"
    mirror, config = await cluster.a.mirror_of(VIN)
    assert mirror is session.mirror and config is session.config  # no copy, no serialisation
    assert await cluster.a.state(VIN) == "online"
    assert await cluster.a.wake(VIN, 0) == "online"
    assert cluster.bus.requests == 0
    await device.disconnect()


async def test_rpc_of_an_unknown_kind_answers_a_typed_error(cluster: Cluster) -> None:
    await FakeDevice(cluster.a).connect()
    reply = await cluster.bus.request(f"flotta.device.{VIN}.rpc", b"?", 1.0)
    assert reply[:1] == b"\x01" and b"internal_error" in reply
    assert await cluster.b.command(VIN, b"still") == b"done:still"


class ClosingLink:
    """A link whose peer is gone after `sends` frames: the next send raises LinkClosed."""

    def __init__(self, sends: int) -> None:
        self.sends = sends
        self.frames: asyncio.Queue[bytes | str | None] = asyncio.Queue()
        hello = {"power": "online", "firmware": "2026.2.1", "config": {}}
        self.frames.put_nowait(protocol.encode_json(FrameType.HELLO, hello))
        self.frames.put_nowait("a text frame, answered with an ERROR")

    async def send(self, data: bytes) -> None:
        if self.sends == 0:
            raise LinkClosed("the peer is gone")
        self.sends -= 1

    async def close(self, code: int, reason: str) -> None:
        return None


@pytest.mark.parametrize("sends", [0, 1], ids=["at WELCOME", "at an ERROR"])
async def test_a_link_closed_under_a_send_ends_quietly_and_leaves_no_session(
    cluster: Cluster, sends: int
) -> None:
    link = ClosingLink(sends)
    serving = cluster.a.serve(record(), link.frames.get, link.send, link.close, "test")
    await asyncio.wait_for(serving, WAIT_S)  # returns: the endpoint has nothing to catch
    assert VIN not in cluster.a.sessions
