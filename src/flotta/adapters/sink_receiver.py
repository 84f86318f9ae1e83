"""Fleet-telemetry-compatible receiver sink: Flotta connects as the cars would (§9.3-9.4).

One WebSocket over TLS per VIN to `wss://<hostname>:<port>/`, verified against ONLY the config's
`ca` (hostname checked), each record's flatbuffers envelope sent as one binary message. With
`wait_for_ack` (fleet-telemetry acks every record: an envelope with message type 5 and the same
txid and topic) a batch is delivered once every record is acked; an error reply (a stream
envelope with the same txid) is a nack. Receivers that never ack (tescmd's) need
`wait_for_ack: false`: delivery then means "written to the socket".

Client certificate: real cars present Tesla-issued certificates whose CN is the VIN, and the
reference server takes the device identity from it. Flotta presents, per VIN, the certificate
`client_certs(vin)` returns (issued by Flotta's vehicle CA, `flotta.telemetry.vehicle_ca`), or
the optional `client_cert` / `client_key` of a receiver sink's settings (one certificate for
every VIN), or none; a receiver that requires mutual TLS must trust that certificate's issuer.

Reconnects back off exponentially, capped at 30 s as a car's do (§9.2).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import ssl
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import WebSocketException

from flotta.adapters.tls import client_context, load_client_cert
from flotta.outbound import DestinationRefused, Outbound, first_connected
from flotta.ports.sinks import SinkError, reason_of
from flotta.telemetry.envelope import MAX_MESSAGE_BYTES, WireError, decode_envelope
from flotta.telemetry.records import StreamRecord

CLIENT_VERSION = "1.0.0"
"""The `Version` header: the vehicle telemetry client whose behaviour Flotta follows."""
NETWORK_INTERFACE = "wifi"

ClientCertificates = Callable[[str], tuple[str, str]]
"""A VIN's client certificate chain and key, both PEM."""


class RecordRefused(SinkError):
    """The receiver answered records with an error (it is up, and said no to them); `txids`
    are the refused records' (the others of the batch were acknowledged)."""

    def __init__(self, message: str, txids: Iterable[str] = ()) -> None:
        super().__init__(message)
        self.txids = frozenset(txids)


@dataclass(frozen=True, slots=True)
class ReceiverTarget:
    """Where and how to connect: the config's hostname, port and CA, plus sink options."""

    hostname: str
    port: int
    ca: str
    client_cert: str | None = None
    client_key: str | None = None
    wait_for_ack: bool = True
    ack_timeout_s: float = 10.0
    connect_timeout_s: float = 10.0
    # Per-VIN client certificates (the vehicle CA's); `client_cert` wins when both are set.
    client_certs: ClientCertificates | None = None


def ssl_context(target: ReceiverTarget, vin: str | None = None) -> ssl.SSLContext:
    """TLS that trusts only the config's CA, checks the hostname, and presents the sink's
    certificate, or the VIN's own."""
    context = client_context(target.ca, "receiver")
    if target.client_cert:
        load_client_cert(context, target.client_cert, target.client_key or "")
    elif vin is not None and target.client_certs is not None:
        load_client_cert(context, *target.client_certs(vin))
    return context


class ReceiverSink:
    """Streams records to a fleet-telemetry-compatible server, one socket per VIN."""

    def __init__(self, target: ReceiverTarget, outbound: Outbound | None = None) -> None:
        """With `outbound`, each connection goes to an address it checked for the hostname
        (flotta.outbound), not to whatever the name resolves to by then."""
        self._target = target
        self._outbound = outbound
        self._ssl = ssl_context(target)  # refuse a bad CA or client cert at open time
        host = f"[{target.hostname}]" if ":" in target.hostname else target.hostname  # IPv6
        self._url = f"wss://{host}:{target.port}/"
        self._sockets: dict[str, ClientConnection] = {}
        self._contexts: dict[str, ssl.SSLContext] = {}

    def _ssl_for(self, vin: str) -> ssl.SSLContext:
        """The TLS context a VIN connects with: its own certificate, when there is one."""
        if self._target.client_cert or self._target.client_certs is None:
            return self._ssl
        context = self._contexts.get(vin)
        if context is None:
            context = self._contexts[vin] = ssl_context(self._target, vin)
        return context

    async def _socket(self, vin: str) -> ClientConnection:
        """The VIN's open socket, connecting when needed (the delivery's retry policy spaces
        the attempts: a failed sink is closed and opened anew)."""
        socket = self._sockets.get(vin)
        if socket is not None and socket.state.name == "OPEN":
            return socket
        target = self._target
        addresses: tuple[str, ...] = (target.hostname,)
        if self._outbound is not None:
            addresses = await self._outbound.addresses(target.hostname, target.port)
        connect = functools.partial(self._connect, vin)
        socket = await first_connected(addresses, connect, target.connect_timeout_s)
        self._sockets[vin] = socket
        return socket

    async def _connect(self, vin: str, address: str, timeout_s: float | None) -> ClientConnection:
        """The handshake with the receiver at `address` (TLS and Host still name the
        hostname)."""
        return await _NoRedirects(
            self._url,
            host=address,
            port=self._target.port,
            ssl=self._ssl_for(vin),
            open_timeout=timeout_s,
            proxy=None,  # a car connects directly
            compression=None,
            max_size=MAX_MESSAGE_BYTES,
            additional_headers={
                "Version": CLIENT_VERSION,
                "X-Network-Interface": NETWORK_INTERFACE,
                "X-TXID": str(uuid.uuid4()),
            },
        )

    async def deliver(self, batch: Sequence[StreamRecord]) -> None:
        """Send every record on its VIN's socket; with acks, wait for each one."""
        by_vin: dict[str, list[StreamRecord]] = {}
        for record in batch:
            by_vin.setdefault(record.vin, []).append(record)
        results = await asyncio.gather(
            *(self._deliver_vin(vin, records) for vin, records in by_vin.items()),
            return_exceptions=True,
        )
        for result in results:
            if isinstance(result, BaseException):
                raise result

    async def _deliver_vin(self, vin: str, records: Sequence[StreamRecord]) -> None:
        """One VIN's records in order; any failure drops that socket and nacks."""
        try:
            socket = await self._socket(vin)
            for record in records:
                await socket.send(record.envelope)
            if self._target.wait_for_ack:
                await asyncio.wait_for(_await_acks(socket, records), self._target.ack_timeout_s)
        except TimeoutError as exc:
            await self._drop(vin)
            raise SinkError(
                f"receiver {self._url} sent no ack within {self._target.ack_timeout_s:g} s"
            ) from exc
        except RecordRefused:
            raise  # the receiver is up and answering: keep its socket
        except (
            OSError,
            ssl.SSLError,
            WebSocketException,
            WireError,
            ValueError,
            DestinationRefused,
        ) as exc:
            await self._drop(vin)
            raise SinkError(f"receiver {self._url}: {reason_of(exc)}") from exc

    async def _drop(self, vin: str) -> None:
        """Close a VIN's socket so its next delivery reconnects."""
        socket = self._sockets.pop(vin, None)
        if socket is not None:
            with contextlib.suppress(OSError, WebSocketException, TimeoutError):
                await asyncio.wait_for(socket.close(), 2.0)

    async def close(self) -> None:
        """Close every socket."""
        for vin in list(self._sockets):
            await self._drop(vin)


async def _await_acks(socket: ClientConnection, records: Sequence[StreamRecord]) -> None:
    """Read replies until every record is acked or refused; RecordRefused names the refused
    ones (the others were taken, and need not be sent again)."""
    # The receiver echoes the txid and topic the frames carry: the records' own.
    pending = {(record.txid.encode(), record.topic) for record in records}
    refused: dict[str, str] = {}  # txid -> the receiver's reason
    while pending:
        reply = await socket.recv()
        if isinstance(reply, str):
            continue  # the protocol is binary only; a text frame is nobody's reply
        try:
            envelope = decode_envelope(reply)
        except WireError:
            continue
        if envelope.is_ack:
            pending.discard((envelope.txid, envelope.topic))
            continue
        answered = {key for key in pending if key[0] == envelope.txid}
        if answered:
            pending -= answered
            reason = envelope.payload.decode(errors="replace") or "error reply"
            refused[envelope.txid.decode(errors="replace")] = reason
    if refused:
        txid, reason = next(iter(refused.items()))
        more = f" (and {len(refused) - 1} more)" if len(refused) > 1 else ""
        raise RecordRefused(f"receiver refused record txid {txid!r}: {reason}{more}", refused)


class _NoRedirects(connect):
    """A connect that treats a redirect as a failed handshake, as a car does: followed, a
    receiver on a public address could send the server on to an internal one that
    flotta.outbound never checked."""

    def process_redirect(self, exc: Exception) -> Exception | str:
        return exc
