"""Kafka sink. There is no Kafka broker on the test machines, so (as issue 5 allows) the sink is
contract-tested against a fake producer: the fake's methods must match aiokafka's, and the real
producer is built for every security setting and tried against a port where nothing listens.
The real producer, opened by `open_sink`, also delivers to a fake broker that speaks Kafka's wire
protocol (tests/adapters/fake_kafka.py), so the sink is tested through the library end to end."""

from __future__ import annotations

import asyncio
import inspect
import ipaddress
import socket
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaProducer  # type: ignore[import-untyped]
from aiokafka.errors import (  # type: ignore[import-untyped]
    KafkaConnectionError,
    NotEnoughReplicasError,
)
from aiokafka.protocol.admin import CreateTopicsRequest_v0  # type: ignore[import-untyped]
from cryptography.hazmat.primitives import serialization
from tesla_protocol.telemetry import vehicle_data_pb2

from flotta.adapters.sink_kafka import KafkaSink, Producer, aiokafka_producer
from flotta.adapters.sinks import SinkSettingsError, open_sink, validate_sink_settings
from flotta.outbound import IPAddress, Outbound
from flotta.ports.sinks import SinkError
from flotta.telemetry.vehicle_ca import VehicleCA
from flotta.telemetry.wire import data_values
from tests.adapters.fake_kafka import FakeKafka, StoredRecord
from tests.adapters.sample import CLIENT_ID, OTHER_VIN, VALUES, VIN, alerts_record, data_record
from tests.adapters.tls import make_server_tls

BROKERS = "kafka-1:9092,kafka-2:9092"


class FakeProducer:
    """Takes what a broker would: each send answers a future, settled as `ack` says."""

    def __init__(self, *, start_error: BaseException | None = None, hang: bool = False) -> None:
        self.start_error, self.hang = start_error, hang
        self.ack: BaseException | None = None  # None: every send is acknowledged
        self.started = self.stopped = False
        self.sent: list[dict[str, Any]] = []

    async def start(self) -> None:
        if self.hang:
            await asyncio.Event().wait()
        if self.start_error is not None:
            raise self.start_error
        self.started = True

    async def send(
        self,
        topic: str,
        value: bytes | None = None,
        key: bytes | None = None,
        partition: int | None = None,
        timestamp_ms: int | None = None,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> asyncio.Future[Any]:
        assert self.started and not self.stopped, "sent through a producer that is not running"
        self.sent.append({"topic": topic, "value": value, "key": key, "headers": headers})
        acked: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        if self.ack is None:
            acked.set_result(None)
        else:
            acked.set_exception(self.ack)
        return acked

    async def stop(self) -> None:
        self.stopped = True


class Producers:
    """The sink's producer factory, keeping every producer it made."""

    def __init__(self, **options: Any) -> None:
        self.options = options
        self.made: list[FakeProducer] = []

    def __call__(self) -> Producer:
        self.made.append(FakeProducer(**self.options))
        return self.made[-1]


def kafka_sink(producers: Producers, fmt: Any = "json", timeout_s: float = 5.0) -> KafkaSink:
    return KafkaSink(BROKERS, "fleet", fmt, timeout_s=timeout_s, producer=producers)


def test_the_fake_has_the_methods_the_sink_uses_as_aiokafka_defines_them() -> None:
    for name in ("start", "send", "stop"):
        real, fake = getattr(AIOKafkaProducer, name), getattr(FakeProducer, name)
        assert inspect.iscoroutinefunction(real) and inspect.iscoroutinefunction(fake), name
        real_params = [(p.name, p.default) for p in inspect.signature(real).parameters.values()]
        fake_params = [(p.name, p.default) for p in inspect.signature(fake).parameters.values()]
        assert fake_params == real_params, name


@pytest.mark.parametrize(
    ("tls", "mechanism", "protocol"),
    [
        (False, None, "PLAINTEXT"),
        (True, None, "SSL"),
        (False, "PLAIN", "SASL_PLAINTEXT"),
        (False, "SCRAM-SHA-256", "SASL_PLAINTEXT"),
        (True, "PLAIN", "SASL_SSL"),
        (True, "SCRAM-SHA-512", "SASL_SSL"),
    ],
)
async def test_aiokafka_takes_the_producer_settings(
    tls: bool, mechanism: str | None, protocol: str
) -> None:
    user, password = ("app", "secret") if mechanism else (None, None)
    context = ssl.create_default_context() if tls else None
    producer = aiokafka_producer(
        BROKERS,
        tls=context,
        sasl_mechanism=mechanism,
        username=user,
        password=password,
        timeout_s=3,
    )
    assert isinstance(producer, AIOKafkaProducer)
    assert producer.client._security_protocol == protocol
    assert producer.client._ssl_context is context
    assert producer.client._request_timeout_ms == 3000
    if mechanism:
        assert producer.client._sasl_mechanism == mechanism
    await producer.stop()  # never started: nothing to flush, but aiokafka warns if not stopped


async def test_records_go_to_the_fleet_telemetry_topics_keyed_by_vin() -> None:
    producers = Producers()
    sink = kafka_sink(producers)
    await sink.deliver([data_record(1), alerts_record(2), data_record(3, vin=OTHER_VIN)])
    await sink.close()

    (producer,) = producers.made
    assert producer.stopped
    assert [(m["topic"], m["key"]) for m in producer.sent] == [
        ("fleet_V", VIN.encode()),
        ("fleet_alerts", VIN.encode()),
        ("fleet_V", OTHER_VIN.encode()),
    ]
    headers = dict(producer.sent[0]["headers"])
    assert headers["cursor"] == b"1" and headers["txid"] == b"1" and headers["vin"] == VIN.encode()
    assert headers["txtype"] == b"V" and headers["topic"] == b"V"
    assert headers["client_id"] == CLIENT_ID.encode()
    assert headers["receivedat"] == b"1767268801000"  # 2026-01-01T12:00:01Z in ms
    assert headers["created_at"] == b"2026-01-01T12:00:01Z"
    assert headers["content-type"] == b"application/json"
    record = orjson.loads(producer.sent[1]["value"])
    assert record["cursor"] == 2 and record["topic"] == "alerts"
    assert [a["name"] for a in record["payload"]["alerts"]] == ["ChargePortFault"] * 2


async def test_protobuf_values_are_the_records_payloads() -> None:
    producers = Producers()
    sink = kafka_sink(producers, "protobuf")
    await sink.deliver([data_record(7)])

    (message,) = producers.made[0].sent
    assert dict(message["headers"])["content-type"] == b"application/x-protobuf"
    payload = vehicle_data_pb2.Payload.FromString(message["value"])
    assert set(data_values(payload)) == set(VALUES)


async def test_a_refused_record_is_a_nack_and_the_next_batch_starts_afresh() -> None:
    producers = Producers()
    sink = kafka_sink(producers)
    await sink.deliver([data_record(1)])
    producers.made[0].ack = NotEnoughReplicasError()

    with pytest.raises(SinkError, match=r"Kafka at kafka-1:9092 \(\+1\): .*NotEnoughReplicas"):
        await sink.deliver([data_record(2), data_record(3)])
    await asyncio.sleep(0)  # the failed producer stops in the background
    assert producers.made[0].stopped

    await sink.deliver([data_record(2), data_record(3)])  # the retry, on a new producer
    assert [dict(m["headers"])["cursor"] for m in producers.made[1].sent] == [b"2", b"3"]


async def test_brokers_that_cannot_be_reached_are_a_nack_and_retried_later() -> None:
    producers = Producers(start_error=KafkaConnectionError("Unable to bootstrap from kafka-1"))
    sink = kafka_sink(producers)
    for _ in range(2):
        with pytest.raises(SinkError, match="Unable to bootstrap"):
            await sink.deliver([data_record(1)])
    await asyncio.sleep(0)  # failed producers stop in the background
    assert len(producers.made) == 2 and all(p.stopped for p in producers.made)


async def test_a_start_that_never_answers_ends_at_the_timeout() -> None:
    producers = Producers(hang=True)
    sink = kafka_sink(producers, timeout_s=0.2)
    async with asyncio.timeout(5):
        with pytest.raises(SinkError, match=r"Kafka at .*TimeoutError"):
            await sink.deliver([data_record(1)])


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A loopback port nothing listens on (bound, never listening)."""
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        yield held.getsockname()[1]


async def test_the_real_producer_against_no_broker_is_a_nack(closed_port: int) -> None:
    where = f"127.0.0.1:{closed_port}"
    sink = open_sink("kafka", {"bootstrap_servers": where, "timeout_s": 2}, "json")
    async with asyncio.timeout(15):
        with pytest.raises(SinkError, match=rf"Kafka at {where}: "):
            await sink.deliver([data_record(1)])
        await sink.close()


def test_settings_are_checked_and_completed() -> None:
    assert validate_sink_settings("kafka", {"bootstrap_servers": "[::1]:9092,b:9093"}) == {
        "timeout_s": 10.0,
        "bootstrap_servers": "[::1]:9092,b:9093",
        "namespace": "tesla_telemetry",
        "tls": False,
        "ca": None,
        "client_cert": None,
        "client_key": None,
        "sasl_mechanism": None,
        "username": None,
        "password": None,
    }
    for brokers in (
        "kafka:9092, other",
        "k:99999",
        "k:0",
        "a..b:1",
        "[1.2.3.4]:1",
        "x" * 64 + ":1",
    ):
        with pytest.raises(SinkSettingsError) as refused:
            validate_sink_settings("kafka", {"bootstrap_servers": brokers})
        assert "settings.bootstrap_servers" in (refused.value.messages or {}), brokers
    cases = {
        "settings.namespace": {"bootstrap_servers": "k:1", "namespace": "a/b"},
        "settings.sasl_mechanism": {"bootstrap_servers": "k:1", "username": "app"},
        "settings.password": {
            "bootstrap_servers": "k:1", "sasl_mechanism": "SCRAM-SHA-512", "username": "app"
        },
    }  # fmt: skip
    for field, settings in cases.items():
        with pytest.raises(SinkSettingsError) as refused:
            validate_sink_settings("kafka", settings)
        assert field in (refused.value.messages or {}), (field, refused.value.messages)
    with pytest.raises(SinkSettingsError) as refused:
        validate_sink_settings("kafka", {"bootstrap_servers": "k:1", "sasl_mechanism": "GSSAPI"})
    assert "settings.sasl_mechanism" in (refused.value.messages or {})


# The real producer, through `open_sink`, against a fake broker speaking Kafka's wire protocol.


def headers_of(record: StoredRecord) -> dict[str, bytes]:
    return dict(record["headers"])


async def test_the_real_producer_delivers_records_to_a_broker() -> None:
    async with asyncio.timeout(5), FakeKafka() as broker:
        sink = open_sink("kafka", {"bootstrap_servers": broker.address, "timeout_s": 2}, "json")
        await sink.deliver([data_record(1), alerts_record(2), data_record(3, vin=OTHER_VIN)])
        await sink.deliver([data_record(4), data_record(5, vin=OTHER_VIN)])
        await sink.close()

        assert set(broker.topics) == {"tesla_telemetry_V", "tesla_telemetry_alerts"}
        data, alerts = broker.topics["tesla_telemetry_V"], broker.topics["tesla_telemetry_alerts"]
        assert [(r["key"], headers_of(r)["cursor"]) for r in data] == [
            (VIN.encode(), b"1"),
            (OTHER_VIN.encode(), b"3"),
            (VIN.encode(), b"4"),
            (OTHER_VIN.encode(), b"5"),
        ]  # one partition: each car's records in the order delivered
        assert [r["offset"] for r in data] == [0, 1, 2, 3]
        (alert,) = alerts
        assert alert["key"] == VIN.encode() and alert["partition"] == 0
        headers = headers_of(alert)
        assert headers["cursor"] == b"2" and headers["txid"] == b"2"
        assert headers["txtype"] == b"alerts" and headers["content-type"] == b"application/json"
        assert headers["receivedat"] == b"1767268802000"  # 2026-01-01T12:00:02Z in ms
        assert headers["client_id"] == CLIENT_ID.encode() and headers["vin"] == VIN.encode()
        for record in broker.records:
            value = orjson.loads(record["value"] or b"null")
            assert value["cursor"] == int(headers_of(record)["cursor"]), record
            assert value["vin"] == (record["key"] or b"").decode(), record
        assert orjson.loads(alert["value"] or b"null")["topic"] == "alerts"
        # acks=all: every Produce waits for all replicas; not idempotent (see sink_kafka)
        assert set(broker.acks) == {-1} and broker.producer_ids == []
        assert broker.unexpected == []


async def test_a_namespace_prefixes_the_topics_on_the_broker() -> None:
    async with asyncio.timeout(5), FakeKafka() as broker:
        settings = {"bootstrap_servers": broker.address, "namespace": "fleet", "timeout_s": 2}
        sink = open_sink("kafka", settings, "json")
        await sink.deliver([data_record(1), alerts_record(2)])
        await sink.close()

        assert {t: len(log) for t, log in broker.topics.items()} == {
            "fleet_V": 1,
            "fleet_alerts": 1,
        }
        assert broker.unexpected == []


async def test_the_real_producer_delivers_protobuf_payloads() -> None:
    async with asyncio.timeout(5), FakeKafka() as broker:
        settings = {"bootstrap_servers": broker.address, "timeout_s": 2}
        sink = open_sink("kafka", settings, "protobuf")
        await sink.deliver([data_record(7)])
        await sink.close()

        (record,) = broker.topics["tesla_telemetry_V"]
        assert headers_of(record)["content-type"] == b"application/x-protobuf"
        assert headers_of(record)["cursor"] == b"7"
        payload = vehicle_data_pb2.Payload.FromString(record["value"])
        assert payload.vin == VIN
        assert set(data_values(payload)) == set(VALUES)
        assert broker.unexpected == []


# Only 127.0.0.1 may be reached: the fake broker, as a bootstrap server the check accepted.
ONLY_THE_BOOTSTRAP = Outbound([ipaddress.ip_network("127.0.0.1/32")])


async def test_a_broker_advertised_at_an_address_the_server_may_not_reach_is_never_dialled() -> (
    None
):
    """The bootstrap server passes the check, but the cluster's metadata names its broker at an
    address that would not: the producer does not connect there, and the nack says why."""
    dialled: list[str] = []

    async def listener(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        dialled.append("connected")
        writer.close()

    elsewhere = await asyncio.start_server(listener, "127.0.0.2", 0)
    port = elsewhere.sockets[0].getsockname()[1]
    try:
        async with asyncio.timeout(10), FakeKafka() as broker:
            broker.advertised = ("127.0.0.2", port)
            settings = {"bootstrap_servers": broker.address, "timeout_s": 1}
            sink = open_sink("kafka", settings, "json", outbound=ONLY_THE_BOOTSTRAP)
            with pytest.raises(
                SinkError,
                match=rf"^Kafka at {broker.address}: broker 0 as the cluster advertises it: "
                r"127\.0\.0\.2 is a loopback address",
            ):
                await sink.deliver([data_record(1)])
            await sink.close()
            assert broker.records == [] and dialled == []
    finally:
        elsewhere.close()
        await elsewhere.wait_closed()


async def test_a_broker_moved_to_a_private_address_while_its_name_is_checked_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The metadata can change while a check waits for DNS: the address that is dialled is the
    one checked, or the check runs again."""
    import aiokafka.client  # type: ignore[import-untyped]
    from aiokafka.structs import BrokerMetadata  # type: ignore[import-untyped]

    made: list[Any] = []
    dialled: list[tuple[str, int]] = []
    create_conn = aiokafka.client.create_conn

    async def recorded(host: str, port: int, **options: Any) -> Any:
        dialled.append((host, port))
        return await create_conn(host, port, **options)

    monkeypatch.setattr(aiokafka.client, "create_conn", recorded)

    async def resolve(host: str, port: int) -> list[IPAddress]:
        if host == "public.test":  # meanwhile, a refresh moves node 0 to the metadata service
            cluster = made[0].client.cluster
            cluster._brokers[0] = BrokerMetadata(0, "169.254.169.254", 80, None)
            return [ipaddress.ip_address("93.184.216.34")]
        return [ipaddress.ip_address(host)]

    outbound = Outbound([ipaddress.ip_network("127.0.0.1/32")], resolve=resolve)
    async with asyncio.timeout(10), FakeKafka() as broker:
        broker.advertised = ("public.test", 9092)

        def producer() -> Producer:
            made.append(
                aiokafka_producer(
                    broker.address, tls=None, sasl_mechanism=None, username=None, password=None,
                    timeout_s=1, outbound=outbound,
                )
            )  # fmt: skip
            return made[-1]

        sink = KafkaSink(broker.address, "tesla_telemetry", "json", timeout_s=1, producer=producer)
        with pytest.raises(SinkError, match=r"169\.254\.169\.254 is a link-local address"):
            await sink.deliver([data_record(1)])
        await sink.close()
        assert broker.records == []
        assert ("169.254.169.254", 80) not in dialled and dialled  # the bootstrap server was


async def test_a_broker_advertised_at_an_allowed_address_is_delivered_to() -> None:
    async with asyncio.timeout(5), FakeKafka() as broker:
        settings = {"bootstrap_servers": broker.address, "timeout_s": 2}
        sink = open_sink("kafka", settings, "json", outbound=ONLY_THE_BOOTSTRAP)
        await sink.deliver([data_record(1)])
        await sink.close()
        assert [headers_of(r)["cursor"] for r in broker.records] == [b"1"]


async def test_a_broker_refusing_records_is_a_nack_then_a_new_producer_delivers() -> None:
    async with asyncio.timeout(5), FakeKafka() as broker:
        sink = open_sink("kafka", {"bootstrap_servers": broker.address, "timeout_s": 1}, "json")
        await sink.deliver([data_record(1)])
        broker.produce_error = 10  # MESSAGE_TOO_LARGE: the library does not retry it

        with pytest.raises(SinkError, match=rf"^Kafka at {broker.address}: .*MessageSizeTooLarge"):
            await sink.deliver([data_record(2), data_record(3)])
        assert [headers_of(r)["cursor"] for r in broker.records] == [b"1"]

        broker.produce_error = 0
        await sink.deliver([data_record(2), data_record(3)])  # the retry
        await sink.close()

        assert [headers_of(r)["cursor"] for r in broker.records] == [b"1", b"2", b"3"]
        assert broker.unexpected == []


def aiokafka_tasks() -> list[asyncio.Task[Any]]:
    """The running tasks of aiokafka's own code (senders, connections, metadata)."""
    return [
        task
        for task in asyncio.all_tasks()
        if "aiokafka" in getattr(getattr(task.get_coro(), "cr_code", None), "co_filename", "")
    ]


async def test_a_failed_producer_stops_in_the_background_and_leaves_nothing_running() -> None:
    async with asyncio.timeout(8), FakeKafka() as broker:
        sink = open_sink("kafka", {"bootstrap_servers": broker.address, "timeout_s": 1}, "json")
        # One topic refused at once, the other retried by the library until its batch expires.
        broker.topic_errors = {"tesla_telemetry_alerts": 10, "tesla_telemetry_V": 19}
        started = asyncio.get_running_loop().time()
        with pytest.raises(SinkError, match="MessageSizeTooLarge"):
            await sink.deliver([data_record(1), alerts_record(2)])
        assert asyncio.get_running_loop().time() - started < 1  # not held up by the stop
        await sink.close()
        assert aiokafka_tasks()  # the failed producer is still stopping: V#1 has not expired
        for _ in range(60):  # its batch expires after timeout_s, then it stops
            if not aiokafka_tasks():
                break
            await asyncio.sleep(0.1)
        assert aiokafka_tasks() == []
        broker.topic_errors = {}
        await asyncio.sleep(0.5)
        assert broker.records == []  # V#1 expired with its producer, never produced later


async def test_a_broker_refusing_until_the_timeout_is_a_nack_and_leaves_nothing_running() -> None:
    async with asyncio.timeout(8), FakeKafka() as broker:
        sink = open_sink("kafka", {"bootstrap_servers": broker.address, "timeout_s": 1}, "json")
        broker.produce_error = 19  # NOT_ENOUGH_REPLICAS: retried by the library until it expires
        started = asyncio.get_running_loop().time()
        with pytest.raises(SinkError, match=rf"^Kafka at {broker.address}: .*NotEnoughReplicas"):
            await sink.deliver([data_record(1)])
        assert asyncio.get_running_loop().time() - started < 4

        broker.produce_error = 0
        await asyncio.sleep(1.5)  # a producer left retrying would deliver cursor 1 meanwhile
        assert broker.records == []
        await sink.deliver([data_record(1)])  # the retry
        await sink.close()
        assert [headers_of(r)["cursor"] for r in broker.records] == [b"1"]


async def test_the_fake_broker_notes_and_drops_requests_it_does_not_serve() -> None:
    """So `unexpected == []` above means the producer asked for nothing the fake ignores."""
    async with asyncio.timeout(5), FakeKafka() as broker:
        host, port = broker.address.split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        request = CreateTopicsRequest_v0([("t", 1, 1, [], [])], 1000)
        message = request.build_request_header(7, "test").encode() + request.encode()
        writer.write(len(message).to_bytes(4, "big") + message)
        assert await reader.read() == b""  # closed without an answer
        writer.close()
        await writer.wait_closed()
        assert broker.unexpected == [(19, 0)]


async def test_tls_trusts_the_ca_given_and_refuses_a_broker_it_does_not_vouch_for() -> None:
    server = make_server_tls("127.0.0.1")
    async with asyncio.timeout(8), FakeKafka(tls=server.server_context()) as broker:
        trusted = {"bootstrap_servers": broker.address, "tls": True, "ca": server.ca_pem}
        sink = open_sink("kafka", {**trusted, "timeout_s": 2}, "json")
        await sink.deliver([data_record(1)])
        await sink.close()
        assert [headers_of(r)["cursor"] for r in broker.records] == [b"1"]

        other_ca = make_server_tls("127.0.0.1").ca_pem
        stranger = open_sink("kafka", {**trusted, "ca": other_ca, "timeout_s": 1}, "json")
        with pytest.raises(SinkError, match=rf"^Kafka at {broker.address}: "):
            await stranger.deliver([data_record(2)])
        await stranger.close()
        assert len(broker.records) == 1


async def test_mutual_tls_presents_the_client_certificate(tmp_path: Path) -> None:
    server, clients = make_server_tls("127.0.0.1"), VehicleCA.load_or_create(tmp_path / "ca.pem")
    context = server.server_context()
    context.verify_mode = ssl.CERT_REQUIRED
    context.load_verify_locations(cadata=clients.certificate_pem)
    cert, key = clients.leaf("flotta-sink")
    async with asyncio.timeout(8), FakeKafka(tls=context) as broker:
        settings = {"bootstrap_servers": broker.address, "tls": True, "ca": server.ca_pem}
        sink = open_sink("kafka", {**settings, "client_cert": cert, "client_key": key}, "json")
        await sink.deliver([data_record(1)])
        await sink.close()
        anonymous = open_sink("kafka", {**settings, "timeout_s": 1}, "json")
        with pytest.raises(SinkError):  # no certificate: the broker ends the handshake
            await anonymous.deliver([data_record(2)])
        await anonymous.close()
        assert [headers_of(r)["cursor"] for r in broker.records] == [b"1"]


def test_tls_settings_are_checked_when_the_sink_is_added() -> None:
    server = make_server_tls()
    cases: dict[str, dict[str, Any]] = {
        "settings.ca": {"ca": server.ca_pem},  # without tls
        "settings.client_key": {"tls": True, "client_cert": server.cert_pem},
    }
    bad_ca = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----"
    cases_tls: dict[str, dict[str, Any]] = {
        "settings.ca": {"tls": True, "ca": bad_ca},
        "settings.client_cert": {
            "tls": True, "client_cert": server.cert_pem, "client_key": make_server_tls().key_pem
        },
    }  # fmt: skip
    for field, settings in [*cases.items(), *cases_tls.items()]:
        with pytest.raises(SinkSettingsError) as refused:
            validate_sink_settings("kafka", {"bootstrap_servers": "k:1", **settings})
        assert field in (refused.value.messages or {}), (field, refused.value.messages)
    good = {"bootstrap_servers": "k:1", "tls": True, "ca": server.ca_pem}
    assert validate_sink_settings("kafka", good)["ca"] == server.ca_pem


def test_a_ca_with_accents_or_an_encrypted_key_is_a_settings_error_not_a_crash() -> None:
    server = make_server_tls()
    accented = "# Issuer: Zürich\n" + server.ca_pem
    key = serialization.load_pem_private_key(server.key_pem.encode(), None)
    locked = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"secret"),
    ).decode()
    base = {"bootstrap_servers": "k:1", "tls": True}
    for field, settings in [
        ("settings.ca", {**base, "ca": accented}),
        ("settings.client_cert", {**base, "client_cert": server.cert_pem, "client_key": locked}),
    ]:
        with pytest.raises(SinkSettingsError) as refused:  # at once: nothing asks for a password
            validate_sink_settings("kafka", settings)
        assert field in (refused.value.messages or {}), refused.value.messages
