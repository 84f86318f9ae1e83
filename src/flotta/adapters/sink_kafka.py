"""Kafka sink: each record produced to `<namespace>_<topic>` keyed by VIN, as fleet-telemetry's
Kafka dispatcher lays records out (reference §9.7), so a consumer written for it reads them when
the sink's format is `protobuf` (its values are then the same payloads).

Headers carry the record's metadata (`formats.metadata`), plus fleet-telemetry's `txtype` (the
topic) and `receivedat` (ingest time, epoch milliseconds), and `content-type`. The producer
waits for every in-sync replica (`acks=all`). Keyed by VIN, a car's records stay in order in one
partition. A batch retried after a failure may be produced twice; the `cursor` header tells the
copies apart.

Not idempotent: aiokafka's idempotent producer retries a refused batch forever (it never
expires one), so `deliver` could only end by its own timeout, and the producer it then stopped
kept retrying in the background and later produced the batch on its own. Without idempotence a
batch fails within about twice `timeout_s` with the broker's error. A producer that failed is
stopped in the background (its other batches expire within the same time) and a new one is
started for the next batch.

There is no Kafka broker on the test machines: this adapter is tested through the real aiokafka
producer against a fake broker speaking Kafka's wire protocol (tests/adapters/fake_kafka.py),
and against a fake producer whose methods are checked against aiokafka's.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from aiokafka import AIOKafkaProducer  # type: ignore[import-untyped, unused-ignore]
from aiokafka.client import ConnectionGroup  # type: ignore[import-untyped, unused-ignore]
from aiokafka.errors import KafkaError  # type: ignore[import-untyped, unused-ignore]

from flotta.outbound import DestinationRefused, Outbound
from flotta.ports.sinks import SinkError, reason_of
from flotta.telemetry import formats
from flotta.telemetry.formats import SinkFormat
from flotta.telemetry.records import StreamRecord


class Producer(Protocol):
    """What the sink uses of `AIOKafkaProducer` (whose `send` takes more, all optional)."""

    async def start(self) -> None: ...

    async def send(
        self, topic: str, value: bytes, *, key: bytes, headers: list[tuple[str, bytes]]
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
    fields["content-type"] = formats.content_type(fmt)
    return [(name, value.encode()) for name, value in fields.items()]


# Kafka's security protocol by (TLS, SASL).
SECURITY_PROTOCOLS = {
    (False, False): "PLAINTEXT",
    (True, False): "SSL",
    (False, True): "SASL_PLAINTEXT",
    (True, True): "SASL_SSL",
}
# Producers stopping in the background: kept, so none is collected half-stopped.
_STOPPING: set[asyncio.Task[None]] = set()


def aiokafka_producer(
    bootstrap_servers: str,
    *,
    tls: ssl.SSLContext | None,
    sasl_mechanism: str | None,
    username: str | None,
    password: str | None,
    timeout_s: float,
    outbound: Outbound | None = None,
) -> Producer:
    """A real producer for the sink's settings (nothing connects until `start`); `tls` is the
    context its connections use, None for plain TCP. With `outbound`, it connects only to
    brokers whose advertised address that allows (`guard_brokers`)."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap_servers.split(","),
        client_id="flotta-sink",
        acks="all",
        enable_idempotence=False,  # see the module docstring
        request_timeout_ms=max(1, round(timeout_s * 1000)),
        security_protocol=SECURITY_PROTOCOLS[tls is not None, sasl_mechanism is not None],
        ssl_context=tls,
        sasl_mechanism=sasl_mechanism or "PLAIN",
        sasl_plain_username=username,
        sasl_plain_password=password,
    )
    if outbound is not None:
        guard_brokers(producer, outbound)
    typed: Producer = producer
    return typed


def guard_brokers(producer: Any, outbound: Outbound) -> None:
    """Check every broker the cluster advertises before the producer connects to it.

    The sink's bootstrap servers are checked before each delivery (GuardedSink), but aiokafka
    then connects to the brokers their metadata names, and a broker the developer runs can name
    any address (169.254.169.254, the server's database). aiokafka has no hook for it, so the
    client's connection method is wrapped; a refused broker is never connected to, and the
    batch for it fails with the reason (`refusal`), not a bare timeout."""
    client = getattr(producer, "client", None)
    connect = getattr(client, "_get_conn", None)
    if (
        client is None
        or connect is None
        or not hasattr(client, "cluster")
        or not hasattr(client, "_conns")
    ):
        raise RuntimeError("this aiokafka cannot have its brokers checked: update flotta")

    async def checked(node_id: Any, *args: Any, **kwargs: Any) -> Any:
        live = client._conns.get((node_id, kwargs.get("group", ConnectionGroup.DEFAULT)))
        if live is not None and live.connected():
            return await connect(node_id, *args, **kwargs)  # reused: nothing new is dialled
        checked_at = None
        # The metadata may change while a check waits for DNS (a refresh answered by another
        # broker): check again until the broker's address held still across one check.
        while (broker := client.cluster.broker_metadata(node_id)) is not None:
            where = (broker.host, broker.port)
            if where == checked_at:
                break
            try:
                await outbound.check(*where)
            except DestinationRefused as exc:
                client.flotta_refusal = f"broker {node_id} as the cluster advertises it: {exc}"
                return None  # to aiokafka, a broker it cannot connect to
            checked_at = where
        client.flotta_refusal = None
        # aiokafka reads the metadata again before its first await: the address just checked.
        return await connect(node_id, *args, **kwargs)

    client._get_conn = checked


def refusal(producer: Producer | None) -> str | None:
    """Why `guard_brokers` last refused a broker of this producer, if it did."""
    reason = getattr(getattr(producer, "client", None), "flotta_refusal", None)
    return reason if isinstance(reason, str) else None


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
        self._latest: Producer | None = None  # the producer made last, started or not
        brokers = bootstrap_servers.split(",")
        # Errors name the first broker (and how many more): the list may be long.
        self._where = brokers[0] + (f" (+{len(brokers) - 1})" if len(brokers) > 1 else "")

    async def _started(self) -> Producer:
        """The running producer, starting one (it fetches the cluster's metadata) if needed."""
        if self._producer is None:
            producer = self._latest = self._new_producer()
            try:
                await asyncio.wait_for(producer.start(), self._timeout_s)
            except BaseException:
                _stop_in_background(producer)
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
            # A fresh producer next time: one that failed to start cannot be started again, and
            # stopping this one waits for its other batches to expire.
            failed, self._producer = self._producer, None
            if failed is not None:
                _stop_in_background(failed)
            reason = refusal(self._latest) or reason_of(exc)
            raise SinkError(f"Kafka at {self._where}: {reason}") from exc

    async def close(self) -> None:
        """Flush and stop the producer (what it cannot deliver expires within about twice
        `timeout_s`; the stop is never cut short, which would leave its tasks running)."""
        producer, self._producer = self._producer, None
        if producer is not None:
            await asyncio.wait({_stop_in_background(producer)}, timeout=2 * self._timeout_s + 1)


def _stop_in_background(producer: Producer) -> asyncio.Task[None]:
    """Stop a producer, however long its pending batches take to expire; failures of the stop
    change nothing. Cancelling a stop half-way would leave aiokafka's tasks running for good."""

    async def stop() -> None:
        with contextlib.suppress(OSError, TimeoutError, KafkaError):
            await producer.stop()

    task = asyncio.get_running_loop().create_task(stop(), name="kafka-producer-stop")
    _STOPPING.add(task)
    task.add_done_callback(_STOPPING.discard)
    return task
