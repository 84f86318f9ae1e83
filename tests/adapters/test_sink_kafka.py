"""Kafka sink. There is no Kafka broker on the test machines, so (as issue 5 allows) the sink is
contract-tested against a fake producer: the fake's methods must match aiokafka's, and the real
producer is built for every security setting and tried against a port where nothing listens."""

from __future__ import annotations

import asyncio
import inspect
import socket
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaProducer  # type: ignore[import-untyped]
from aiokafka.errors import (  # type: ignore[import-untyped]
    KafkaConnectionError,
    NotEnoughReplicasError,
)
from tesla_protocol.telemetry import vehicle_data_pb2

from flotta.adapters.sink_kafka import KafkaSink, Producer, aiokafka_producer
from flotta.adapters.sinks import SinkSettingsError, open_sink, validate_sink_settings
from flotta.ports.sinks import SinkError
from flotta.telemetry.wire import data_values
from tests.adapters.sample import CLIENT_ID, OTHER_VIN, VALUES, VIN, alerts_record, data_record

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
    ("tls", "mechanism"), [(False, None), (True, None), (False, "SCRAM-SHA-256"), (True, "PLAIN")]
)
async def test_aiokafka_takes_the_producer_settings(tls: bool, mechanism: str | None) -> None:
    user, password = ("app", "secret") if mechanism else (None, None)
    producer = aiokafka_producer(
        BROKERS, tls=tls, sasl_mechanism=mechanism, username=user, password=password, timeout_s=3
    )
    assert isinstance(producer, AIOKafkaProducer)
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

    with pytest.raises(SinkError, match=r"Kafka at kafka-1:9092,kafka-2:9092: .*NotEnoughReplicas"):
        await sink.deliver([data_record(2), data_record(3)])
    assert producers.made[0].stopped

    await sink.deliver([data_record(2), data_record(3)])  # the retry, on a new producer
    assert [dict(m["headers"])["cursor"] for m in producers.made[1].sent] == [b"2", b"3"]


async def test_brokers_that_cannot_be_reached_are_a_nack_and_retried_later() -> None:
    producers = Producers(start_error=KafkaConnectionError("Unable to bootstrap from kafka-1"))
    sink = kafka_sink(producers)
    for _ in range(2):
        with pytest.raises(SinkError, match="Unable to bootstrap"):
            await sink.deliver([data_record(1)])
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
        "sasl_mechanism": None,
        "username": None,
        "password": None,
    }
    cases = {
        "settings.bootstrap_servers": {"bootstrap_servers": "kafka:9092, other"},
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
