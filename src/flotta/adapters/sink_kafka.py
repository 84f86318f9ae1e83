"""Kafka sink: each record produced to `<namespace>_<topic>` keyed by VIN, as fleet-telemetry's
Kafka dispatcher lays records out (reference §9.7), so a consumer written for it reads these.

Headers carry the record's metadata (`formats.metadata`), plus fleet-telemetry's `txtype` (the
topic) and `receivedat` (ingest time, epoch milliseconds), and `content-type`. The producer
waits for every in-sync replica (`acks=all`). Keyed by VIN, a car's records stay in order in one
partition. A batch retried after a failure may be produced twice; the `cursor` header tells the
copies apart.

Not idempotent: aiokafka's idempotent producer retries a refused batch forever (it never
expires one), so `deliver` could only end by its own timeout, and the producer it then stops
kept retrying in the background and later produced the batch on its own. Without idempotence
a batch fails after `timeout_s` with the broker's error, and nothing is left running.

There is no Kafka broker on the test machines: this adapter is contract-tested against a fake
producer whose methods are checked against aiokafka's (tests/adapters/test_sink_kafka.py).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from aiokafka import AIOKafkaProducer  # type: ignore[import-untyped, unused-ignore]
from aiokafka.errors import KafkaError  # type: ignore[import-untyped, unused-ignore]
from aiokafka.helpers import create_ssl_context  # type: ignore[import-untyped, unused-ignore]

from flotta.ports.sinks import SinkError
from flotta.telemetry import formats
from flotta.telemetry.formats import SinkFormat
from flotta.telemetry.records import StreamRecord


class Producer(Protocol):
    """What the sink uses of `AIOKafkaProducer`."""

    async def start(self) -> None: ...

    async def send(
        self,
        topic: str,
        value: bytes | None = None,
        key: bytes | None = None,
        partition: int | None = None,
        timestamp_ms: int | None = None,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> asyncio.Future[Any]: ...

    async def stop(self) -> None: ...


def topic_for(namespace: str, record: StreamRecord) -> str:
    """The Kafka topic a record goes to (fleet-telemetry's `BuildTopicName`)."""
    return f"{namespace}_{record.topic}"


def headers_for(record: StreamRecord, fmt: SinkFormat) -> list[tuple[str, bytes]]:
    """The message headers of a record."""
    fields = formats.metadata(record)
    fields["txtype"] = record.topic
    fields["receivedat"] = str(int(record.created_at.timestamp() * 1000))
    fields["content-type"] = (
        formats.JSON_CONTENT_TYPE if fmt == "json" else formats.PROTOBUF_CONTENT_TYPE
    )
    return [(name, value.encode()) for name, value in fields.items()]


def aiokafka_producer(
    bootstrap_servers: str,
    *,
    tls: bool,
    sasl_mechanism: str | None,
    username: str | None,
    password: str | None,
    timeout_s: float,
) -> Producer:
    """A real producer for the sink's settings (nothing connects until `start`)."""
    protocol = ("SASL_SSL" if tls else "SASL_PLAINTEXT") if sasl_mechanism else "PLAINTEXT"
    if tls and not sasl_mechanism:
        protocol = "SSL"
    producer: Producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap_servers.split(","),
        client_id="flotta-sink",
        acks="all",
        enable_idempotence=False,  # see the module docstring
        request_timeout_ms=int(timeout_s * 1000),
        security_protocol=protocol,
        ssl_context=create_ssl_context() if tls else None,
        sasl_mechanism=sasl_mechanism or "PLAIN",
        sasl_plain_username=username,
        sasl_plain_password=password,
    )
    return producer


class KafkaSink:
    """Produces each batch; it counts as delivered once the brokers acknowledged every record."""

    def __init__(
        self,
        bootstrap_servers: str,
        namespace: str,
        fmt: SinkFormat,
        *,
        timeout_s: float = 10.0,
        producer: Callable[[], Producer],
    ) -> None:
        self._namespace, self._fmt, self._timeout_s = namespace, fmt, timeout_s
        self._new_producer = producer
        self._producer: Producer | None = None
        self._where = bootstrap_servers

    async def _started(self) -> Producer:
        """The running producer, starting one (it fetches the cluster's metadata) if needed."""
        if self._producer is None:
            producer = self._new_producer()
            try:
                await asyncio.wait_for(producer.start(), self._timeout_s)
            except BaseException:
                await _stop_quietly(producer)
                raise
            self._producer = producer
        return self._producer

    async def deliver(self, batch: Sequence[StreamRecord]) -> None:
        """Produce every record of the batch, then wait for all of their acknowledgements."""
        if not batch:
            return
        try:
            producer = await self._started()
            acks = [
                await producer.send(
                    topic_for(self._namespace, record),
                    formats.record_bytes(record, self._fmt),
                    key=record.vin.encode(),
                    headers=headers_for(record, self._fmt),
                )
                for record in batch
            ]
            # The library expires an unsent batch after the request timeout; this is the bound
            # should it not.
            await asyncio.wait_for(asyncio.gather(*acks), self._timeout_s * 2)
        except (OSError, TimeoutError, KafkaError) as exc:
            # A fresh producer next time: one that failed to start cannot be started again.
            await self._drop()
            reason = str(exc) or type(exc).__name__
            raise SinkError(f"Kafka at {self._where}: {reason}") from exc

    async def _drop(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            await _stop_quietly(producer)

    async def close(self) -> None:
        """Flush and stop the producer."""
        await self._drop()


async def _stop_quietly(producer: Producer) -> None:
    """Stop a producer that may be half-started; failures here change nothing."""
    with contextlib.suppress(OSError, TimeoutError, KafkaError):
        await asyncio.wait_for(producer.stop(), 5.0)
