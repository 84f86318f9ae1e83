"""One contract for every bus adapter: the in-process one, and NATS when it is reachable."""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from flotta.adapters.bus_memory import MemoryBus
from flotta.ports.bus import Bus, BusMessage, BusTimeout, NoResponders, subject_matches
from tests.conftest import service_reachable

NATS_HOST = os.environ.get("FLOTTA_TEST_NATS_HOST", "127.0.0.1")
NATS_PORT = int(os.environ.get("FLOTTA_TEST_NATS_PORT", "4222"))
WAIT_S = 5.0  # upper bound on any delivery in these tests

BusMaker = Callable[[str], Awaitable[Bus]]


@pytest.fixture(params=["memory", "nats"])
async def make_bus(request: pytest.FixtureRequest) -> AsyncIterator[BusMaker]:
    """Connections that share one server; each call is another connection (or process)."""
    made: list[Bus] = []
    shared = MemoryBus()
    if request.param == "nats":
        service_reachable(NATS_HOST, NATS_PORT, "NATS")
    # A fresh namespace per test, so parallel runs on one server never see each other.
    run = f"t{secrets.token_hex(4)}"

    async def make(namespace: str = "") -> Bus:
        if request.param == "memory":
            return shared
        from flotta.adapters.bus_nats import NatsBus

        bus = await NatsBus.connect(f"nats://{NATS_HOST}:{NATS_PORT}", namespace or run)
        made.append(bus)
        return bus

    try:
        yield make
    finally:
        for bus in made:
            await bus.close()
        await shared.close()


class Inbox:
    """A handler that records what it gets and can say when `count` messages arrived."""

    def __init__(self, reply: bytes | None = None) -> None:
        self.messages: list[BusMessage] = []
        self.reply = reply
        self._changed = asyncio.Event()

    async def __call__(self, msg: BusMessage) -> bytes | None:
        self.messages.append(msg)
        self._changed.set()
        return self.reply

    async def wait_for(self, count: int) -> None:
        async with asyncio.timeout(WAIT_S):
            while len(self.messages) < count:
                self._changed.clear()
                await self._changed.wait()


async def test_publish_fans_out_to_every_matching_subscriber(make_bus: BusMaker) -> None:
    publisher, subscriber = await make_bus(""), await make_bus("")
    first, second, star, tail, other = Inbox(), Inbox(), Inbox(), Inbox(), Inbox()
    await subscriber.subscribe("orders.eu.created", first)
    await subscriber.subscribe("orders.eu.created", second)
    await subscriber.subscribe("orders.*.created", star)
    await subscriber.subscribe("orders.>", tail)
    await subscriber.subscribe("orders.us.created", other)
    await publisher.publish("orders.eu.created", b"one")
    await publisher.publish("orders.eu.created", b"two")
    for inbox in (first, second, star, tail):
        await inbox.wait_for(2)
        assert [m.data for m in inbox.messages] == [b"one", b"two"]
        assert {m.subject for m in inbox.messages} == {"orders.eu.created"}
    await asyncio.sleep(0.05)  # time for a stray delivery to show up
    assert other.messages == []


async def test_request_gets_the_reply_from_another_connection(make_bus: BusMaker) -> None:
    server, client = await make_bus(""), await make_bus("")

    async def shout(msg: BusMessage) -> bytes:
        return msg.data.upper()

    await server.subscribe("svc.shout", shout)
    assert await client.request("svc.shout", b"hello", timeout_s=WAIT_S) == b"HELLO"


async def test_a_responder_that_declines_leaves_the_reply_to_another(make_bus: BusMaker) -> None:
    bus = await make_bus("")
    silent, answering = Inbox(reply=None), Inbox(reply=b"here")
    await bus.subscribe("svc.who", silent)
    await bus.subscribe("svc.who", answering)
    assert await bus.request("svc.who", b"?", timeout_s=WAIT_S) == b"here"
    await silent.wait_for(1)


async def test_request_times_out_when_nobody_answers_in_time(make_bus: BusMaker) -> None:
    bus = await make_bus("")
    release = asyncio.Event()

    async def slow(msg: BusMessage) -> bytes:
        await release.wait()
        return b"late"

    await bus.subscribe("svc.slow", slow)
    started = time.monotonic()
    with pytest.raises(BusTimeout):
        await bus.request("svc.slow", b"", timeout_s=0.3)
    assert 0.25 <= time.monotonic() - started < 2.0
    release.set()


async def test_a_failing_handler_sends_no_reply_and_the_bus_keeps_working(
    make_bus: BusMaker,
) -> None:
    bus = await make_bus("")

    async def broken(msg: BusMessage) -> bytes:
        if msg.data == b"boom":
            raise RuntimeError("handler bug")
        return b"fine"

    await bus.subscribe("svc.fragile", broken)
    with pytest.raises(BusTimeout):
        await bus.request("svc.fragile", b"boom", timeout_s=0.3)
    assert await bus.request("svc.fragile", b"ok", timeout_s=WAIT_S) == b"fine"


async def test_request_without_subscribers_fails_fast_with_no_responders(
    make_bus: BusMaker,
) -> None:
    bus = await make_bus("")
    started = time.monotonic()
    with pytest.raises(NoResponders):
        await bus.request("svc.nobody", b"", timeout_s=WAIT_S)
    assert time.monotonic() - started < 1.0  # not the whole timeout


async def test_unsubscribe_stops_delivery(make_bus: BusMaker) -> None:
    bus = await make_bus("")
    inbox = Inbox(reply=b"yes")
    sub = await bus.subscribe("svc.once", inbox)
    assert await bus.request("svc.once", b"", timeout_s=WAIT_S) == b"yes"
    await sub.unsubscribe()
    with pytest.raises(NoResponders):
        await bus.request("svc.once", b"", timeout_s=WAIT_S)
    await bus.publish("svc.once", b"lost")
    await asyncio.sleep(0.05)
    assert len(inbox.messages) == 1


async def test_a_slow_request_does_not_hold_up_the_next_one(make_bus: BusMaker) -> None:
    bus = await make_bus("")
    release = asyncio.Event()

    async def handler(msg: BusMessage) -> bytes:
        if msg.data == b"slow":
            await release.wait()
        return msg.data

    await bus.subscribe("svc.mixed", handler)
    slow = asyncio.create_task(bus.request("svc.mixed", b"slow", timeout_s=WAIT_S))
    await asyncio.sleep(0.05)
    assert await bus.request("svc.mixed", b"quick", timeout_s=1.0) == b"quick"
    release.set()
    assert await slow == b"slow"


async def test_nats_namespaces_keep_deployments_apart() -> None:
    """Only server-backed buses are shared; the in-process one is private by construction."""
    service_reachable(NATS_HOST, NATS_PORT, "NATS")
    from flotta.adapters.bus_nats import NatsBus

    url, run = f"nats://{NATS_HOST}:{NATS_PORT}", secrets.token_hex(4)
    blue = await NatsBus.connect(url, f"blue{run}")
    green = await NatsBus.connect(url, f"green{run}")
    try:
        inbox = Inbox(reply=b"blue")
        await blue.subscribe("svc.ns", inbox)
        with pytest.raises(NoResponders):
            await green.request("svc.ns", b"", timeout_s=WAIT_S)
        await green.publish("svc.ns", b"wrong deployment")
        assert await blue.request("svc.ns", b"", timeout_s=WAIT_S) == b"blue"
        assert [m.data for m in inbox.messages] == [b""]
    finally:
        await blue.close()
        await green.close()


@pytest.mark.parametrize(
    ("pattern", "subject", "matches"),
    [
        ("a.b", "a.b", True),
        ("a.*", "a.b", True),
        ("a.*", "a.b.c", False),
        ("a.>", "a.b.c", True),
        ("a.>", "a", False),
        (">", "a", True),
        ("a.*.c", "a.x.c", True),
        ("a.b", "a.c", False),
    ],
)
def test_subject_wildcards_follow_nats(pattern: str, subject: str, matches: bool) -> None:
    assert subject_matches(pattern, subject) is matches


async def test_an_unreachable_nats_fails_start_up_with_the_reason() -> None:
    from flotta.adapters.bus_nats import NatsBus
    from flotta.ports.bus import BusError

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed_port = sock.getsockname()[1]  # bound, never listening: connections are refused
        started = time.monotonic()
        with pytest.raises(BusError, match=r"cannot connect to NATS at nats://127\.0\.0\.1"):
            await NatsBus.connect(f"nats://127.0.0.1:{closed_port}", timeout_s=1.0)
    assert time.monotonic() - started < 5.0
