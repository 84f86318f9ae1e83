"""Durable delivery to a config's own receiver, as a car streams there: a loopback
fleet-telemetry-style server over TLS that requires a client certificate from Flotta's vehicle
CA (downloaded from the API) and checks its CN is the record's VIN. The receiver is down for a
while, the dispatcher restarts, a record is refused: every record arrives once, in order."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import structlog
from cryptography import x509
from sqlalchemy import delete, select
from websockets.asyncio.server import Server, ServerConnection, serve

from flotta.telemetry.delivery import DeliveryPolicy
from flotta.telemetry.delivery_models import TelemetryReceiverDeliveryRow
from flotta.telemetry.dispatch import Dispatcher
from flotta.telemetry.envelope import ack_envelope, stream_envelope
from flotta.telemetry.models import TelemetryConfigRow
from flotta.telemetry.receivers import open_receiver
from flotta.telemetry.wire import decode_record
from tests.adapters.tls import make_server_tls
from tests.live import LiveDemo
from tests.telemetry.dispatch_support import live as live  # a demo of its own per database
from tests.telemetry.dispatch_support import stream
from tests.telemetry.streaming_support import closed_port, wait_for
from tests.telemetry.test_ingest_support import StreamingCar, partner_token, streaming_car

POLICY = DeliveryPolicy(
    batch_size=50,
    max_attempts=2,
    backoff_base_s=0.05,
    backoff_max_s=0.2,
    poll_s=0.1,
    lease_s=1.0,
    flush_s=0.1,
    idle_s=5.0,
)


@dataclass
class CarReceiver:
    """Accepts only cars with a vehicle-CA certificate; acks each record unless refused."""

    vehicle_ca: str
    refuse: set[str] = field(default_factory=set)
    received: list[tuple[str, str]] = field(default_factory=list)  # (certificate CN, txid)
    server: Server | None = None

    def __post_init__(self) -> None:
        self.tls = make_server_tls()

    def context(self) -> ssl.SSLContext:
        context = self.tls.server_context()
        context.verify_mode = ssl.CERT_REQUIRED  # mutual TLS, as Tesla's receivers require
        context.load_verify_locations(cadata=self.vehicle_ca)
        return context

    async def handle(self, connection: ServerConnection) -> None:
        peer: Any = connection.transport.get_extra_info("peercert")
        common_name = dict(part[0] for part in peer["subject"])["commonName"]
        async for message in connection:
            assert isinstance(message, bytes)
            record = decode_record(message)
            txid = record.txid.decode()
            if record.vin != common_name or txid in self.refuse:
                reason = b"vin mismatch" if record.vin != common_name else b"refused"
                await connection.send(
                    stream_envelope(record.topic, reason, vin="", created_at_s=0, txid=record.txid)
                )
                continue
            self.received.append((common_name, txid))
            await connection.send(ack_envelope(record.txid, record.topic))

    async def start(self, port: int) -> None:
        self.server = await serve(self.handle, "127.0.0.1", port, ssl=self.context())

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()

    def txids(self) -> list[str]:
        return [txid for _, txid in self.received]


def vehicle_ca_pem(live: LiveDemo) -> str:
    """The CA a developer downloads to trust Flotta's cars."""
    car = streaming_car(live)
    headers = {"Authorization": f"Bearer {partner_token(live, car.client_id)}"}
    url = f"{live.base_url}/flotta/v1/telemetry/vehicle-ca.pem"
    assert httpx.get(url, timeout=10).status_code == 401
    answer = httpx.get(url, headers=headers, timeout=10)
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("application/x-pem-file")
    assert (
        x509.load_pem_x509_certificate(answer.content)
        .extensions.get_extension_for_class(x509.BasicConstraints)
        .value.ca
    )
    return answer.text


def point_at(live: LiveDemo, car: StreamingCar, port: int, ca: str) -> None:
    """Name a receiver on loopback in the car's config, acking as `delivery_policy: latest`."""
    runtime = live.handle.runtime

    async def change() -> None:
        async with runtime.sessions() as s, s.begin():
            row = await s.get(TelemetryConfigRow, car.config_id)
            assert row is not None
            row.config = {**row.config, "hostname": "127.0.0.1", "port": port, "ca": ca,
                          "delivery_policy": "latest"}  # fmt: skip
            row.updated_at = runtime.clock.now()
        assert runtime.streams is not None
        runtime.streams.entitlements.forget()

    live.call(change())


def start(live: LiveDemo) -> Dispatcher:
    runtime = live.handle.runtime
    streams = runtime.streams
    assert streams is not None and streams.vehicle_ca is not None
    receivers = open_receiver(streams.vehicle_ca.leaf)

    async def go() -> Dispatcher:
        dispatcher = Dispatcher(
            runtime.sessions, streams.records, streams.entitlements, runtime.clock,
            receivers=receivers, policy=POLICY,
        )  # fmt: skip
        await dispatcher.start()
        return dispatcher

    return live.call(go())


def api_get(live: LiveDemo, car: StreamingCar, path: str) -> Any:
    headers = {"Authorization": f"Bearer {partner_token(live, car.client_id)}"}
    answer = httpx.get(f"{live.base_url}{path}", headers=headers, timeout=10)
    assert answer.status_code == 200, answer.text
    return answer.json()["response"]


def log_of(live: LiveDemo, car: StreamingCar) -> list[tuple[str, int, int]]:
    async def read() -> list[tuple[str, int, int]]:
        async with live.handle.runtime.sessions() as s:
            rows = await s.scalars(
                select(TelemetryReceiverDeliveryRow)
                .where(TelemetryReceiverDeliveryRow.config_id == car.config_id)
                .order_by(TelemetryReceiverDeliveryRow.id)
            )
            return [(r.status, r.records, r.attempts) for r in rows]

    return live.call(read())


def caught_up(live: LiveDemo, car: StreamingCar) -> list[dict[str, Any]]:
    listed = api_get(live, car, "/flotta/v1/telemetry/receivers")
    return [entry for entry in listed if not entry["pending"]]


@pytest.fixture
def receiver(live: LiveDemo) -> Iterator[CarReceiver]:
    state = CarReceiver(vehicle_ca_pem(live))
    try:
        yield state
    finally:
        live.call(state.stop())


def test_a_receiver_down_for_a_while_then_back_gets_every_record_once(
    live: LiveDemo, receiver: CarReceiver
) -> None:
    car = streaming_car(live)
    port = closed_port()
    point_at(live, car, port, receiver.tls.ca_pem)
    first, second = start(live), start(live)  # two processes: one delivers
    try:
        stream(live, car, range(1, 4))
        wait_for(lambda: log_of(live, car), what="a failed attempt in the delivery log")
        live.call(receiver.start(port))  # the receiver comes back
        stream(live, car, range(4, 6))
        wait_for(lambda: len(receiver.received) >= 5, what="every record at the receiver")
        live.call(asyncio.sleep(0.5))  # time for a duplicate, if any
        listed = wait_for(lambda: caught_up(live, car), what="the receiver caught up (API)")
    finally:
        live.call(first.stop())
        live.call(second.stop())
    assert receiver.txids() == ["1", "2", "3", "4", "5"]
    assert {name for name, _ in receiver.received} == {car.vin}  # the car's own certificate
    assert listed[0]["vin"] == car.vin and listed[0]["port"] == port
    assert listed[0]["delivered_through"] == listed[0]["newest_record"]
    statuses = [status for status, _, _ in log_of(live, car)]
    assert statuses == ["delivered"]  # retried while the receiver was down, then delivered
    assert log_of(live, car)[0][2] >= 2


def test_a_restart_resumes_and_a_refused_record_becomes_a_dead_letter(
    live: LiveDemo, receiver: CarReceiver
) -> None:
    car = streaming_car(live)
    port = closed_port()
    live.call(receiver.start(port))
    receiver.refuse.add("4")
    point_at(live, car, port, receiver.tls.ca_pem)
    dispatcher = start(live)
    stream(live, car, range(1, 3))
    wait_for(lambda: len(receiver.received) >= 2, what="the first records")
    live.call(dispatcher.stop())
    stream(live, car, range(3, 7))  # while no process delivers
    dispatcher = start(live)
    try:
        wait_for(lambda: len(receiver.received) >= 5, what="the records after the restart")
        dead = wait_for(
            lambda: api_get(live, car, "/flotta/v1/telemetry/receivers/deliveries?status=dead"),
            what="the refused record's dead letter",
        )
    finally:
        live.call(dispatcher.stop())
    assert receiver.txids() == ["1", "2", "3", "5", "6"]
    assert len(dead) == 1 and dead[0]["records"] == 1
    assert dead[0]["attempts"] == POLICY.max_attempts
    assert "refused" in dead[0]["last_error"]
    assert dead[0]["first_record_id"] == dead[0]["last_record_id"]


def test_a_batch_refused_whole_is_one_dead_letter_and_delivery_moves_on(
    live: LiveDemo, receiver: CarReceiver
) -> None:
    car = streaming_car(live)
    port = closed_port()
    live.call(receiver.start(port))
    receiver.refuse.update({"1", "2", "3"})
    point_at(live, car, port, receiver.tls.ca_pem)
    stream(live, car, range(1, 4))  # before any process delivers: read back as one batch
    dispatcher = start(live)
    try:
        dead = wait_for(
            lambda: api_get(live, car, "/flotta/v1/telemetry/receivers/deliveries?status=dead"),
            what="the refused batch's dead letter",
        )
        stream(live, car, range(4, 5))
        wait_for(lambda: receiver.txids() == ["4"], what="the next record delivered")
    finally:
        live.call(dispatcher.stop())
    # One series for the batch: split, it would back off once per record.
    assert len(dead) == 1 and dead[0]["records"] == 3
    assert dead[0]["attempts"] == POLICY.max_attempts


def test_a_retried_batch_with_one_record_refused_is_logged_delivered(
    live: LiveDemo, receiver: CarReceiver
) -> None:
    car = streaming_car(live)
    port = closed_port()
    receiver.refuse.add("2")
    point_at(live, car, port, receiver.tls.ca_pem)
    stream(live, car, range(1, 4))
    dispatcher = start(live)
    try:
        wait_for(lambda: log_of(live, car), what="a failed attempt in the delivery log")
        live.call(receiver.start(port))  # back, and it refuses one of the three
        wait_for(
            lambda: [s for s, _, _ in log_of(live, car)] == ["delivered", "dead"],
            what="the batch delivered and the refused record dead",
        )
    finally:
        live.call(dispatcher.stop())
    assert receiver.txids() == ["1", "3"]
    assert [(status, records) for status, records, _ in log_of(live, car)] == [
        ("delivered", 3),
        ("dead", 1),
    ]


def test_a_config_removed_while_its_batch_is_retried_ends_its_lane_without_an_error(
    live: LiveDemo, receiver: CarReceiver
) -> None:
    car = streaming_car(live)
    point_at(live, car, closed_port(), receiver.tls.ca_pem)  # down: every attempt fails
    stream(live, car, range(1, 3))
    dispatcher = start(live)
    runtime = live.handle.runtime

    async def remove() -> None:  # as another process would: this one's caches do not know
        async with runtime.sessions() as s, s.begin():
            gone = delete(TelemetryConfigRow).where(TelemetryConfigRow.id == car.config_id)
            await s.execute(gone)

    with structlog.testing.capture_logs() as logs:
        try:
            wait_for(lambda: log_of(live, car), what="a failed attempt in the delivery log")
            live.call(remove())
            # Attempts go on every 0.2 s until the cached config expires (2 s); each one that
            # fails after the removal must end the lane, not fail to log against a gone config
            # (a new log row, or the one read just before the removal).
            live.call(asyncio.sleep(3.0))
        finally:
            live.call(dispatcher.stop())
    errors = [entry for entry in logs if entry["log_level"] in ("error", "critical")]
    assert errors == []
    assert log_of(live, car) == []  # the config's delivery log went with it
