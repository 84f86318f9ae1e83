"""Reachability of a telemetry config's hostname:port, against real sockets on loopback."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterator

import pytest

from flotta.telemetry.reachability import MAX_TIMEOUT_S, check_reachable


async def test_a_listening_server_is_reachable() -> None:
    accepted = asyncio.Event()

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.set()
        writer.close()

    server = await asyncio.start_server(on_connect, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        assert await check_reachable("127.0.0.1", port, 2.0) is None
        await asyncio.wait_for(accepted.wait(), 2.0)


async def test_a_closed_port_is_refused() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # Nothing listens on the port any more (no listen() was ever called on it).
    message = await check_reachable("127.0.0.1", port, 2.0)
    assert message == (
        f"127.0.0.1:{port} refused the connection: is the telemetry server listening on that port?"
    )


async def test_the_checked_addresses_are_connected_to_not_the_name() -> None:
    # `.test` names never resolve: only a connection to the addresses given can succeed. The
    # first address refuses (nothing listens on 127.0.0.2), the second accepts.
    server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        addresses = ("127.0.0.2", "127.0.0.1")
        assert await check_reachable("receiver.rebind.test", port, 2.0, addresses) is None
        refused = await check_reachable("receiver.rebind.test", port, 2.0, ("127.0.0.2",))
    assert refused is not None and "refused the connection" in refused


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port whose accept queue is full, so a new handshake hangs (Linux drops the SYN)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    for _ in range(3):
        filler = socket.socket()
        filler.setblocking(False)
        filler.connect_ex(("127.0.0.1", port))
        fillers.append(filler)
    time.sleep(0.1)  # let the kernel finish the fillers' handshakes
    try:
        yield port
    finally:
        for filler in fillers:
            filler.close()
        listener.close()


async def test_a_silent_port_times_out_within_the_bound(silent_port: int) -> None:
    started = time.monotonic()
    message = await check_reachable("127.0.0.1", silent_port, 0.3)
    elapsed = time.monotonic() - started
    assert message == f"127.0.0.1:{silent_port} did not accept a TCP connection within 0.3 s"
    assert elapsed < 2.0


async def test_an_unresolvable_name_is_named() -> None:
    # RFC 6761 reserves .invalid: it never resolves, with or without a network.
    message = await check_reachable("flotta-test.invalid", 443, 3.0)
    assert message is not None and message.startswith("flotta-test.invalid")


@pytest.mark.parametrize("timeout_s", [0.0, -1.0, MAX_TIMEOUT_S + 1])
async def test_the_timeout_is_bounded(timeout_s: float) -> None:
    with pytest.raises(ValueError, match="timeout_s"):
        await check_reachable("127.0.0.1", 443, timeout_s)
