"""Receiver sink: Flotta connects like a car to tescmd's receiver (behind TLS, as Tailscale
Funnel fronts it) and to a fleet-telemetry-style acking receiver, trusting only the config CA."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path
from typing import Any

import pytest
from tescmd.telemetry import TelemetryDecoder
from tescmd.telemetry.decoder import TelemetryFrame
from tescmd.telemetry.server import TelemetryServer
from websockets.asyncio.server import ServerConnection, serve
from websockets.http11 import Request, Response

from flotta.adapters.sinks import SinkSettingsError, open_sink, validate_sink_settings
from flotta.clock import ScaledClock
from flotta.ports.sinks import Sink, SinkError
from flotta.telemetry.envelope import ack_envelope, stream_envelope
from flotta.telemetry.vehicle_ca import VehicleCA
from flotta.telemetry.wire import decode_record
from tests.adapters.sample import OTHER_VIN, VIN, data_record
from tests.adapters.tls import ServerTls, make_server_tls

WAIT_S = 5.0


def _free_pair() -> int:
    """A port P with P+1 also free (tescmd's mux takes P, its WebSocket server P+1)."""
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = int(probe.getsockname()[1])
        with socket.socket() as second, contextlib.suppress(OSError):
            second.bind(("127.0.0.1", port + 1))
            return port
    raise RuntimeError("no free port pair")


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError, asyncio.CancelledError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    writer.close()


@pytest.fixture
async def tescmd_over_tls() -> AsyncIterator[tuple[ServerTls, int, asyncio.Queue[TelemetryFrame]]]:
    """tescmd's receiver on loopback with a TLS terminator in front of it."""
    tls = make_server_tls()
    frames: asyncio.Queue[TelemetryFrame] = asyncio.Queue()

    async def on_frame(frame: TelemetryFrame) -> None:
        await frames.put(frame)

    inner_port = _free_pair()
    server = TelemetryServer(inner_port, TelemetryDecoder(), on_frame)
    await server.start()

    async def terminate(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", inner_port)
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))

    front = await asyncio.start_server(terminate, "127.0.0.1", 0, ssl=tls.server_context())
    port = front.sockets[0].getsockname()[1]
    try:
        yield tls, port, frames
    finally:
        front.close()
        await server.stop()


def _receiver(tls_ca: str, port: int, **options: object) -> Sink:
    settings = {"hostname": "localhost", "port": port, "ca": tls_ca, "timeout_s": 2, **options}
    return open_sink("receiver", settings, "protobuf", clock=ScaledClock(speed=50))


async def test_tescmd_receiver_decodes_the_vin_and_values(
    tescmd_over_tls: tuple[ServerTls, int, asyncio.Queue[TelemetryFrame]],
) -> None:
    tls, port, frames = tescmd_over_tls
    sink = _receiver(tls.ca_pem, port, wait_for_ack=False)  # tescmd never acks
    try:
        await sink.deliver([data_record(1), data_record(2, vin=OTHER_VIN, values={"Soc": 55})])
        got = [await asyncio.wait_for(frames.get(), WAIT_S) for _ in range(2)]
    finally:
        await sink.close()

    by_vin = {frame.vin: {d.field_name: d.value for d in frame.data} for frame in got}
    assert by_vin[VIN]["VehicleSpeed"] == pytest.approx(34.5)
    assert by_vin[VIN]["Soc"] == 80
    assert by_vin[VIN]["Gear"] in ("ShiftStateD", "D")
    assert by_vin[OTHER_VIN] == {"Soc": 55}
    assert {frame.topic for frame in got} == {"V"}


async def test_a_server_signed_by_another_ca_is_refused(
    tescmd_over_tls: tuple[ServerTls, int, asyncio.Queue[TelemetryFrame]],
) -> None:
    _, port, frames = tescmd_over_tls
    sink = _receiver(make_server_tls().ca_pem, port, wait_for_ack=False)
    with pytest.raises(SinkError, match="CERTIFICATE_VERIFY_FAILED"):
        await sink.deliver([data_record(1)])
    await sink.close()
    assert frames.empty()


async def test_a_server_that_hangs_up_during_the_handshake_is_a_nack_that_says_so() -> None:
    """A TLS handshake cut short raises without text: the nack still says what happened."""

    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(100)  # the client's hello, unanswered
        writer.close()

    server = await asyncio.start_server(hang_up, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    sink = _receiver(make_server_tls().ca_pem, port)
    try:
        with pytest.raises(SinkError) as refused:
            await sink.deliver([data_record(1)])
    finally:
        await sink.close()
        server.close()
        await server.wait_closed()
    prefix = f"receiver wss://localhost:{port}/: "
    message = str(refused.value)
    assert message.startswith(prefix) and len(message) > len(prefix) + 3, message


@dataclass
class AckingReceiver:
    """A fleet-telemetry-style receiver: acks each record, or replies with an error."""

    mode: str = "ack"  # "ack", "error" or "silent"
    received: list[bytes] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)

    async def handle(self, connection: ServerConnection) -> None:
        assert connection.request is not None
        self.headers.append(dict(connection.request.headers))
        async for message in connection:
            assert isinstance(message, bytes)
            self.received.append(message)
            record = decode_record(message)
            if self.mode == "ack":
                await connection.send(ack_envelope(record.txid, record.topic))
            elif self.mode == "error":
                await connection.send(
                    stream_envelope(
                        record.topic,
                        b"incorrect message format",
                        vin="",
                        created_at_s=0,
                        txid=record.txid,
                    )
                )


@pytest.fixture
async def acking() -> AsyncIterator[tuple[ServerTls, int, AckingReceiver]]:
    tls = make_server_tls()
    state = AckingReceiver()
    async with serve(state.handle, "127.0.0.1", 0, ssl=tls.server_context()) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        yield tls, port, state


async def test_batch_is_delivered_once_every_record_is_acked(
    acking: tuple[ServerTls, int, AckingReceiver],
) -> None:
    tls, port, state = acking
    sink = _receiver(tls.ca_pem, port)
    try:
        await sink.deliver([data_record(1), data_record(2), data_record(3, vin=OTHER_VIN)])
    finally:
        await sink.close()
    assert sorted(decode_record(m).txid for m in state.received) == [b"1", b"2", b"3"]
    assert len(state.headers) == 2  # one socket per VIN, as each car has its own
    assert all(h["version"] == "1.0.0" and h["x-txid"] for h in state.headers)


async def test_a_redirect_in_the_handshake_is_not_followed(
    acking: tuple[ServerTls, int, AckingReceiver],
) -> None:
    """A car does not follow one, and the server must not: a receiver on a public address
    could otherwise send it on to an internal one that flotta.outbound never checked."""
    tls, target_port, state = acking

    def redirect(connection: ServerConnection, request: Request) -> Response:
        response = connection.respond(HTTPStatus.FOUND, "moved\n")
        response.headers["Location"] = f"wss://localhost:{target_port}/"
        return response

    redirecting = serve(
        lambda c: c.wait_closed(),
        "127.0.0.1",
        0,
        ssl=tls.server_context(),
        process_request=redirect,
    )
    async with redirecting as server:
        port = next(iter(server.sockets)).getsockname()[1]
        sink = _receiver(tls.ca_pem, port)
        with pytest.raises(SinkError, match="302"):
            await sink.deliver([data_record(1)])
        await sink.close()
    assert state.headers == [] and state.received == []


async def test_error_reply_and_missing_ack_are_nacks(
    acking: tuple[ServerTls, int, AckingReceiver],
) -> None:
    tls, port, state = acking
    sink = _receiver(tls.ca_pem, port, timeout_s=0.5)
    state.mode = "error"
    with pytest.raises(SinkError, match="incorrect message format"):
        await sink.deliver([data_record(1)])
    state.mode = "silent"
    with pytest.raises(SinkError, match="no ack"):
        await sink.deliver([data_record(2)])
    state.mode = "ack"
    await sink.deliver([data_record(3)])  # reconnects after the dropped socket
    await sink.close()
    assert len(state.headers) == 2


def test_settings_name_what_is_wrong() -> None:
    with pytest.raises(SinkSettingsError) as caught:
        validate_sink_settings("receiver", {"hostname": "receiver.example.com", "ca": "not a pem"})
    assert "settings.ca" in (caught.value.messages or {})
    with pytest.raises(SinkSettingsError) as caught:
        validate_sink_settings(
            "receiver",
            {
                "hostname": "receiver.example.com",
                "ca": "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----",
            },
        )
    assert "settings.ca" in (caught.value.messages or {})
    ok = validate_sink_settings(
        "receiver", {"hostname": "receiver.example.com", "ca": make_server_tls().ca_pem}
    )
    assert ok["port"] == 443 and ok["wait_for_ack"] is True


async def test_each_vin_presents_its_own_vehicle_certificate(tmp_path: Path) -> None:
    """A receiver that requires mutual TLS, as Tesla's do, sees each car's VIN as the CN."""
    vehicle_ca = VehicleCA.load_or_create(tmp_path / "vehicle-ca.pem")
    tls = make_server_tls()
    context = tls.server_context()
    context.verify_mode = ssl.CERT_REQUIRED
    context.load_verify_locations(cadata=vehicle_ca.certificate_pem)
    seen: list[tuple[str, str]] = []  # (certificate CN, record VIN)

    async def handle(connection: ServerConnection) -> None:
        peer: Any = connection.transport.get_extra_info("peercert")
        common_name = dict(part[0] for part in peer["subject"])["commonName"]
        async for message in connection:
            assert isinstance(message, bytes)
            record = decode_record(message)
            seen.append((common_name, record.vin))
            await connection.send(ack_envelope(record.txid, record.topic))

    settings = {"hostname": "localhost", "ca": tls.ca_pem, "timeout_s": 2}
    async with serve(handle, "127.0.0.1", 0, ssl=context) as server:
        settings["port"] = next(iter(server.sockets)).getsockname()[1]
        sink = open_sink(
            "receiver", settings, "protobuf", clock=ScaledClock(), client_certs=vehicle_ca.leaf
        )
        try:
            await sink.deliver([data_record(1), data_record(2, vin=OTHER_VIN)])
        finally:
            await sink.close()
        anonymous = open_sink("receiver", settings, "protobuf", clock=ScaledClock())
        with pytest.raises(SinkError):  # no certificate: the receiver hangs up
            await anonymous.deliver([data_record(3)])
        await anonymous.close()
    assert sorted(seen) == [(VIN, VIN), (OTHER_VIN, OTHER_VIN)]
