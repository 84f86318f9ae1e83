"""A test fake of a Kafka broker: one node on loopback speaking just enough of the Kafka wire
protocol for aiokafka's producer (idempotent or not) to bootstrap and produce to it.

It answers each request in one non-flexible version (so no tagged fields or compact encodings):
- ApiVersions v0: the versions below, and only those;
- Metadata v5: one broker, this one, node 0; every topic asked for exists (created on the first
  request) with one partition, led by node 0;
- InitProducerId v0: a new producer id (kept in `producer_ids`), epoch 0;
- Produce v7: each partition's record batches are checked (magic 2, CRC) and their records
  appended to `topics`, or every partition is refused with `produce_error` if set (or with
  `topic_errors[topic]` for that topic).
Any other request is noted in `unexpected` and its connection closed, as Kafka closes a
connection on a request it does not support.

Requests are decoded and answers encoded with aiokafka's own protocol classes: the fake cannot
catch a layout bug in aiokafka, but it runs our sink through the real client, end to end.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from io import BytesIO
from types import TracebackType
from typing import Any, TypedDict

from aiokafka.protocol.admin import ApiVersionRequest_v0  # type: ignore[import-untyped]
from aiokafka.protocol.api import (  # type: ignore[import-untyped]
    RequestHeader_v1,
    ResponseHeader_v0,
)
from aiokafka.protocol.metadata import MetadataRequest_v5  # type: ignore[import-untyped]
from aiokafka.protocol.produce import ProduceRequest_v7  # type: ignore[import-untyped]
from aiokafka.protocol.transaction import (  # type: ignore[import-untyped]
    InitProducerIdRequest_v0,
)
from aiokafka.record.memory_records import MemoryRecords  # type: ignore[import-untyped]

NODE_ID = 0
NO_ERROR = 0
CORRUPT_MESSAGE = 2  # what a broker answers for a batch whose checksum does not match
UNKNOWN_TOPIC_OR_PARTITION = 3

# The one version of each request the fake answers, by api key.
REQUESTS: dict[int, Any] = {
    request.API_KEY: request
    for request in (
        ProduceRequest_v7,
        MetadataRequest_v5,
        ApiVersionRequest_v0,
        InitProducerIdRequest_v0,
    )
}


class StoredRecord(TypedDict):
    """A record as the broker keeps it."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]]
    timestamp: int


class FakeKafka:
    """`async with FakeKafka() as broker:` serves on `broker.address` until the block ends."""

    def __init__(self, *, tls: ssl.SSLContext | None = None) -> None:
        self._tls = tls  # serve over TLS with this context
        self.topics: dict[str, list[StoredRecord]] = {}  # each topic's only partition, in order
        self.produce_error = NO_ERROR  # an error code to answer every produced partition with
        self.topic_errors: dict[str, int] = {}  # or one per topic
        self.unexpected: list[tuple[int, int]] = []  # (api key, version) of requests not served
        self.producer_ids: list[int] = []  # handed out by InitProducerId, in order
        self.acks: list[int] = []  # `required_acks` of every Produce request
        self._server: asyncio.Server | None = None
        self._port = 0
        self._connections: dict[asyncio.Task[None], asyncio.StreamWriter] = {}
        # (host, port) its metadata names it at, as a broker behind NAT or a hostile one may;
        # None: where it listens.
        self.advertised: tuple[str, int] | None = None

    @property
    def address(self) -> str:
        """`host:port`, as a bootstrap server."""
        return f"127.0.0.1:{self._port}"

    @property
    def records(self) -> list[StoredRecord]:
        """Every record held, topic by topic."""
        return [record for log in self.topics.values() for record in log]

    async def __aenter__(self) -> FakeKafka:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self._tls)
        self._port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._server is not None
        self._server.close()
        for writer in list(self._connections.values()):
            writer.close()  # each connection's task then ends, as when the client hangs up
        if self._connections:
            await asyncio.wait(set(self._connections))
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """One client connection: answer its requests in order until it (or the broker) ends."""
        task = asyncio.current_task()
        assert task is not None
        self._connections[task] = writer
        try:
            while True:
                size = int.from_bytes(await reader.readexactly(4), "big", signed=True)
                answer = self._answer(await reader.readexactly(size))
                if answer is None:
                    break
                writer.write(len(answer).to_bytes(4, "big") + answer)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
            pass  # the client went away, or its TLS handshake failed
        finally:
            del self._connections[task]
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    def _answer(self, frame: bytes) -> bytes | None:
        """The response frame's body for one request frame, or None to close the connection."""
        data = BytesIO(frame)
        api_key, version, correlation_id, _client_id = RequestHeader_v1.SCHEMA.decode(data)
        request_type = REQUESTS.get(api_key)
        if request_type is None or version != request_type.API_VERSION:
            self.unexpected.append((api_key, version))
            return None
        handler = {
            ApiVersionRequest_v0.API_KEY: self._api_versions,
            MetadataRequest_v5.API_KEY: self._metadata,
            InitProducerIdRequest_v0.API_KEY: self._init_producer_id,
            ProduceRequest_v7.API_KEY: self._produce,
        }[api_key]
        response = handler(request_type.decode(data))
        header: bytes = ResponseHeader_v0(correlation_id).encode()
        body: bytes = response.encode()
        return header + body

    def _api_versions(self, request: Any) -> Any:
        versions = [(key, r.API_VERSION, r.API_VERSION) for key, r in REQUESTS.items()]
        return request.RESPONSE_TYPE(NO_ERROR, versions)

    def _metadata(self, request: Any) -> Any:
        names = list(self.topics) if request.topics is None else request.topics
        for name in names:
            self.topics.setdefault(name, [])
        # error, partition, leader, replicas, in-sync replicas, offline replicas
        partitions: list[tuple[int, int, int, list[int], list[int], list[int]]]
        partitions = [(NO_ERROR, 0, NODE_ID, [NODE_ID], [NODE_ID], [])]
        topics = [(NO_ERROR, name, False, partitions) for name in names]
        host, port = self.advertised or ("127.0.0.1", self._port)
        brokers = [(NODE_ID, host, port, None)]
        return request.RESPONSE_TYPE(0, brokers, "fake-kafka", NODE_ID, topics)

    def _init_producer_id(self, request: Any) -> Any:
        self.producer_ids.append(1000 + len(self.producer_ids))
        return request.RESPONSE_TYPE(0, NO_ERROR, self.producer_ids[-1], 0)

    def _produce(self, request: Any) -> Any:
        self.acks.append(request.required_acks)
        answers = []
        for topic, partitions in request.topics:
            log = self.topics.setdefault(topic, [])
            answered = []
            for partition, batches in partitions:
                base_offset = len(log)
                error = self.topic_errors.get(topic, self.produce_error) or (
                    self._append(topic, partition, batches, log)
                    if partition == 0
                    else UNKNOWN_TOPIC_OR_PARTITION
                )
                # partition, error, base offset, log append time (-1: create time), log start
                answered.append((partition, error, base_offset if not error else -1, -1, 0))
            answers.append((topic, answered))
        return request.RESPONSE_TYPE(answers, 0)

    @staticmethod
    def _append(topic: str, partition: int, data: bytes, log: list[StoredRecord]) -> int:
        """Keep the records of a partition's batches (all of them, or none if one is corrupt)."""
        batches, records = MemoryRecords(data), []
        while (batch := batches.next_batch()) is not None:
            if batch.magic != 2 or not batch.validate_crc():
                return CORRUPT_MESSAGE
            records.extend(batch)
        for record in records:
            log.append(
                StoredRecord(
                    topic=topic,
                    partition=partition,
                    offset=len(log),
                    key=record.key,
                    value=record.value,
                    headers=list(record.headers),
                    timestamp=record.timestamp,
                )
            )
        return NO_ERROR
