"""Two energy hubs sharing one bus and kv, as two processes would: site routing, no server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

import pytest

from flotta.adapters.bus_memory import MemoryBus
from flotta.adapters.kv_memory import MemoryKV
from flotta.clock import ManualClock
from flotta.energy.gateway import EnergyHub, SiteUnavailable
from flotta.errors import FlottaError
from flotta.gateway import protocol
from flotta.gateway.protocol import FrameType
from tests.energy.support import Link

SITE = 42
TTL_S = 3.0
WAIT_S = 5.0
T0 = datetime(2026, 6, 1, 12, tzinfo=UTC)


class FakeSite(Link):
    """A site gateway driven by the test: answers requests like the simulator would."""

    def __init__(self, hub: EnergyHub, *, answer: bool = True) -> None:
        super().__init__()
        self.hub = hub
        self.answer = answer
        self.settings: dict[str, Any] = {"backup_reserve_percent": 20}
        self.task: asyncio.Task[None] | None = None

    async def connect(self) -> FakeSite:
        self.push(FrameType.HELLO, {"config": {"site_name": "Test"}})
        self.task = asyncio.create_task(self.hub.serve(SITE, self.receive, self.send, self.close))
        await self.next_sent(FrameType.WELCOME)
        return self

    async def send(self, data: bytes) -> None:
        frame = protocol.decode(data, 1_000_000)
        if frame.type != FrameType.COMMAND:
            await super().send(data)
        elif self.answer:
            self.push(
                FrameType.REPLY, self._reply(protocol.decode_json(frame)), frame.correlation_id
            )

    def _reply(self, body: dict[str, Any]) -> dict[str, Any]:
        if body["op"] == "live_status":
            return {"live_status": {"solar_power": 1500.0}}
        if body["op"] == "configure":
            if body["settings"].get("backup_reserve_percent") == -1:
                return {"error": "invalid_value", "description": "backup_reserve_percent"}
            self.settings.update(body["settings"])
        return {"settings": dict(self.settings)}

    async def close(self, code: int, reason: str) -> None:
        await super().close(code, reason)
        self.inbox.put_nowait(None)

    async def disconnect(self) -> None:
        self.inbox.put_nowait(None)
        assert self.task is not None
        await asyncio.wait_for(self.task, WAIT_S)


@dataclass
class Cluster:
    bus: MemoryBus
    kv: MemoryKV
    kv_clock: ManualClock
    a: EnergyHub
    b: EnergyHub
    clock_b: ManualClock


def make_hub(bus: MemoryBus, kv: MemoryKV, clock: ManualClock, timeout_s: float) -> EnergyHub:
    # No database: history storage is not what these tests are about.
    hub = EnergyHub(
        clock,
        cast(Any, None),
        max_frame_bytes=1_000_000,
        timeout_s=timeout_s,
        bus=bus,
        kv=kv,
        presence_ttl_s=TTL_S,
    )
    hub.start()
    return hub


@pytest.fixture
async def cluster() -> AsyncIterator[Cluster]:
    bus, kv_clock, clock_b = MemoryBus(), ManualClock(T0), ManualClock(T0)
    kv = MemoryKV(kv_clock)
    a = make_hub(bus, kv, ManualClock(T0), timeout_s=0.3)
    b = make_hub(bus, kv, clock_b, timeout_s=0.3)
    try:
        yield Cluster(bus, kv, kv_clock, a, b, clock_b)
    finally:
        await a.stop()
        await b.stop()
        await bus.close()


async def test_another_process_reads_and_writes_the_site(cluster: Cluster) -> None:
    site = await FakeSite(cluster.a).connect()
    site.push(FrameType.STATE, {"live_status": {"solar_power": 900.0}})
    live = await cluster.b.ask(SITE, "live_status", "live_status")
    assert live == {"solar_power": 1500.0}
    await cluster.b.ask(SITE, "configure", "settings", settings={"backup_reserve_percent": 55})
    assert (await cluster.b.ask(SITE, "site_info", "settings"))["backup_reserve_percent"] == 55
    assert (await cluster.b.report(SITE))["live_status"]["solar_power"] == 900.0
    # Sites have their own presence records, apart from the vehicles' `presence:<VIN>`.
    assert await cluster.kv.get(f"presence:site:{SITE}") is not None
    assert await cluster.kv.get(f"presence:{SITE}") is None


async def test_errors_come_back_as_the_same_flotta_errors(cluster: Cluster) -> None:
    await FakeSite(cluster.a).connect()
    with pytest.raises(FlottaError) as refused:
        await cluster.b.ask(SITE, "configure", "settings", settings={"backup_reserve_percent": -1})
    assert (refused.value.status, refused.value.key) == (400, "invalid_value")
    assert refused.value.description == "backup_reserve_percent"


async def test_a_silent_site_is_a_408_through_another_process(cluster: Cluster) -> None:
    await FakeSite(cluster.a, answer=False).connect()
    with pytest.raises(SiteUnavailable) as timed_out:
        await cluster.b.ask(SITE, "live_status", "live_status")
    assert timed_out.value.status == 408
    assert "did not answer within 0.3 s" in timed_out.value.description


async def test_a_disconnected_site_is_unavailable_everywhere(cluster: Cluster) -> None:
    site = await FakeSite(cluster.a).connect()
    await site.disconnect()
    assert await cluster.kv.get(f"presence:site:{SITE}") is None
    with pytest.raises(SiteUnavailable):
        await cluster.b.ask(SITE, "live_status", "live_status")
    assert await cluster.b.report(SITE) == {}


async def test_a_newer_link_on_another_process_replaces_the_older(cluster: Cluster) -> None:
    older = await FakeSite(cluster.a).connect()
    cluster.clock_b.advance(1)  # B's link is the newer one
    await FakeSite(cluster.b).connect()
    assert older.task is not None
    await asyncio.wait_for(older.task, WAIT_S)
    assert older.closed == (4409, "replaced by a newer connection")
    assert not cluster.a.connected(SITE)
    # A's clean-up did not erase B's presence, and A now reaches the site through B.
    assert await cluster.kv.get(f"presence:site:{SITE}") is not None
    assert (await cluster.a.ask(SITE, "live_status", "live_status"))["solar_power"] == 1500.0


async def test_presence_lasts_while_the_owner_beats(cluster: Cluster) -> None:
    await FakeSite(cluster.a).connect()
    kv_clock = cluster.kv_clock
    a_clock = cast(ManualClock, cluster.a.clock)
    for _ in range(8):
        a_clock.advance(TTL_S / 4)
        kv_clock.advance(TTL_S / 4)
        for _ in range(5):
            await asyncio.sleep(0)  # let the heartbeat run
    assert await cluster.kv.get(f"presence:site:{SITE}") is not None
    kv_clock.advance(TTL_S * 1.1)  # A stops beating
    assert await cluster.kv.get(f"presence:site:{SITE}") is None
