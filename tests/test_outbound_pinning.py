"""DNS rebinding: webhooks, receivers and key downloads connect to the address the outbound
check accepted for a host, never to whatever the name resolves to a moment later.

The hosts here end in `.test`, which no DNS resolves: only the Outbound's own resolver (played
by each test) knows them, so a delivery that arrives proves the connection went to the checked
address, with TLS and the Host header still naming the host.
"""

from __future__ import annotations

import ipaddress
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from aiohttp import web
from websockets.asyncio.server import ServerConnection, serve

from flotta.adapters.sink_receiver import ReceiverSink, ReceiverTarget
from flotta.adapters.sink_webhook import WebhookSink
from flotta.adapters.sinks import open_sink
from flotta.apps.public_key import KeyFetchFailed, fetch_public_key
from flotta.clock import ScaledClock
from flotta.outbound import IPAddress, Outbound
from flotta.ports.sinks import SinkError
from flotta.telemetry.envelope import ack_envelope
from flotta.telemetry.wire import decode_record
from tests.adapters.sample import data_record
from tests.adapters.tls import make_server_tls
from tests.apps.keys import p256_pair

SECRET = "whsec_" + "A" * 32
LOOPBACK = ipaddress.ip_network("127.0.0.1/32")


@dataclass
class Resolver:
    """A name's DNS answers, one list per lookup (the last one repeats)."""

    answers: list[list[str]]
    lookups: list[str] = field(default_factory=list)

    async def __call__(self, host: str, port: int) -> list[IPAddress]:
        self.lookups.append(host)
        answer = self.answers[0] if len(self.answers) == 1 else self.answers.pop(0)
        return [ipaddress.ip_address(a) for a in answer]


@dataclass
class Endpoint:
    """A loopback HTTP server recording the Host header of each request."""

    port: int = 0
    hosts: list[str] = field(default_factory=list)
    body: bytes = b""
    redirect: str = ""  # answered with a 302 to here, once


@pytest.fixture
async def endpoint() -> AsyncIterator[Endpoint]:
    state = Endpoint()

    async def handle(request: web.Request) -> web.Response:
        state.hosts.append(request.headers["Host"])
        if state.redirect:
            location, state.redirect = state.redirect, ""
            return web.Response(status=302, headers={"Location": location})
        return web.Response(status=200 if state.body else 204, body=state.body or None)

    app = web.Application()
    app.router.add_route("*", "/{path:.*}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    state.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield state
    finally:
        await runner.cleanup()


async def deliver_webhook(url: str, outbound: Outbound, *cursors: int) -> None:
    """Records by cursor through a webhook sink opened with `outbound`, as the dispatcher
    opens it."""
    sink = open_sink(
        "webhook", {"url": url}, "json", SECRET, clock=ScaledClock(), outbound=outbound
    )
    try:
        for cursor in cursors:
            await sink.deliver([data_record(cursor)])
    finally:
        await sink.close()


async def test_a_webhook_connects_to_the_address_its_host_was_checked_at(
    endpoint: Endpoint,
) -> None:
    # The first lookup (the check before the delivery) says loopback, which this server
    # allows; a rebinding name then answers with a metadata service's address.
    resolver = Resolver([["127.0.0.1"], ["169.254.169.254"]])
    outbound = Outbound([LOOPBACK], resolve=resolver)
    await deliver_webhook(f"http://hooks.rebind.test:{endpoint.port}/hook", outbound, 1, 2)
    assert endpoint.hosts == [f"hooks.rebind.test:{endpoint.port}"] * 2
    # One lookup served the check and both connections: nothing resolved the name again.
    assert resolver.lookups == ["hooks.rebind.test"]


async def test_the_next_checked_address_is_tried_when_the_first_does_not_answer(
    endpoint: Endpoint,
) -> None:
    # Nothing listens on 127.0.0.2: its connection is refused, and 127.0.0.1 is tried next.
    outbound = Outbound(
        [ipaddress.ip_network("127.0.0.0/8")], resolve=Resolver([["127.0.0.2", "127.0.0.1"]])
    )
    await deliver_webhook(f"http://hooks.rebind.test:{endpoint.port}/hook", outbound, 1)
    assert endpoint.hosts == [f"hooks.rebind.test:{endpoint.port}"]


async def test_a_demo_that_allows_everything_still_connects_by_name(endpoint: Endpoint) -> None:
    demo = Outbound([ipaddress.ip_network("0.0.0.0/0"), ipaddress.ip_network("::/0")])
    await deliver_webhook(f"http://127.0.0.1:{endpoint.port}/hook", demo, 1)
    assert endpoint.hosts == [f"127.0.0.1:{endpoint.port}"]


async def test_the_connection_itself_refuses_an_address_the_check_would_refuse(
    endpoint: Endpoint,
) -> None:
    # Not through GuardedSink: the webhook's own connection asks the outbound policy.
    outbound = Outbound([LOOPBACK], resolve=Resolver([["10.0.0.7"]]))
    sink = WebhookSink(
        f"http://hooks.rebind.test:{endpoint.port}/hook",
        SECRET,
        "json",
        clock=ScaledClock(),
        outbound=outbound,
    )
    try:
        with pytest.raises(SinkError, match=r"hooks\.rebind\.test \(10\.0\.0\.7\) is a private"):
            await sink.deliver([data_record(1)])
    finally:
        await sink.close()
    assert endpoint.hosts == []


async def test_a_receiver_is_reached_at_the_checked_address_with_tls_for_its_name() -> None:
    tls = make_server_tls("receiver.rebind.test")
    received: list[bytes] = []
    hosts: list[str] = []

    async def handle(connection: ServerConnection) -> None:
        assert connection.request is not None
        hosts.append(connection.request.headers["Host"])
        async for message in connection:
            assert isinstance(message, bytes)
            received.append(message)
            record = decode_record(message)
            await connection.send(ack_envelope(record.txid, record.topic))

    # The second answer would be the rebinding one: nothing may ask for it.
    resolver = Resolver([["127.0.0.1"], ["10.0.0.1"]])
    outbound = Outbound([LOOPBACK], resolve=resolver)
    async with serve(handle, "127.0.0.1", 0, ssl=tls.server_context()) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        settings = {"hostname": "receiver.rebind.test", "port": port, "ca": tls.ca_pem}
        sink = open_sink("receiver", settings, "protobuf", outbound=outbound)
        try:
            await sink.deliver([data_record(1)])
        finally:
            await sink.close()
    assert [decode_record(m).txid for m in received] == [b"1"]
    assert hosts == [f"receiver.rebind.test:{port}"]
    assert resolver.lookups == ["receiver.rebind.test"]


async def test_a_receiver_whose_name_now_resolves_to_a_private_address_is_a_nack() -> None:
    outbound = Outbound([LOOPBACK], resolve=Resolver([["192.168.1.20"]]))
    target = ReceiverTarget("receiver.rebind.test", 4443, make_server_tls().ca_pem)
    # Unguarded: the receiver's own connection refuses it.
    sink = ReceiverSink(target, outbound)
    try:
        with pytest.raises(SinkError, match=r"\(192\.168\.1\.20\) is a private address"):
            await sink.deliver([data_record(1)])
    finally:
        await sink.close()


async def test_a_public_key_is_downloaded_from_the_checked_address(endpoint: Endpoint) -> None:
    pem, point = p256_pair()
    endpoint.body = pem.encode()
    resolver = Resolver([["127.0.0.1"], ["10.0.0.1"]])
    outbound = Outbound([LOOPBACK], resolve=resolver)
    url = f"http://keys.rebind.test:{endpoint.port}/.well-known/key.pem"
    assert await fetch_public_key(url, timeout_s=5, outbound=outbound) == point
    assert resolver.lookups == ["keys.rebind.test"]

    refused = Outbound([LOOPBACK], resolve=Resolver([["10.0.0.1"]]))
    with pytest.raises(KeyFetchFailed, match="is a private address"):
        await fetch_public_key(url, timeout_s=5, outbound=refused)


async def test_a_key_redirect_is_connected_to_only_at_a_checked_address(
    endpoint: Endpoint,
) -> None:
    # The same host on another port is looked up anew when the redirect is followed, and by
    # then the name answers with a private address: the connection itself refuses it.
    endpoint.redirect = f"http://keys.rebind.test:{endpoint.port + 1}/key.pem"
    outbound = Outbound([LOOPBACK], resolve=Resolver([["127.0.0.1"], ["10.0.0.1"]]))
    url = f"http://keys.rebind.test:{endpoint.port}/.well-known/key.pem"
    with pytest.raises(KeyFetchFailed, match=r"keys\.rebind\.test \(10\.0\.0\.1\) is a private"):
        await fetch_public_key(url, timeout_s=5, outbound=outbound)
    assert endpoint.hosts == [f"keys.rebind.test:{endpoint.port}"]
