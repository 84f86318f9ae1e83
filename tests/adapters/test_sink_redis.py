"""Redis Streams sink against the machine's Redis: XRANGE reads back what was delivered."""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
import redis.asyncio as aioredis
from tesla_protocol.telemetry import vehicle_data_pb2

from flotta.adapters.sinks import open_sink
from flotta.ports.sinks import SinkError
from flotta.telemetry.wire import data_values
from tests.adapters.sample import CLIENT_ID, VIN, alerts_record, data_record
from tests.conftest import service_reachable

HOST = os.environ.get("FLOTTA_TEST_REDIS_HOST", "127.0.0.1")
PORT = int(os.environ.get("FLOTTA_TEST_REDIS_PORT", "6379"))
URL = f"redis://{HOST}:{PORT}/0"

pytestmark = pytest.mark.services


async def _entries(client: aioredis.Redis, key: str) -> list[dict[bytes, bytes]]:
    """The stream's entries' field maps, oldest first."""
    entries: Any = await client.xrange(key)
    return [fields for _, fields in entries]


@pytest.fixture
async def redis_client() -> AsyncIterator[aioredis.Redis]:
    service_reachable(HOST, PORT, "Redis")
    client = aioredis.Redis.from_url(URL, socket_timeout=5)
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture
async def prefix(redis_client: aioredis.Redis) -> AsyncIterator[str]:
    """A key prefix of this test only; its keys are deleted afterwards."""
    value = f"flotta-test-{secrets.token_hex(4)}"
    yield value
    await redis_client.delete(f"{value}:{CLIENT_ID}")


async def test_json_entries_carry_metadata_and_record(
    redis_client: aioredis.Redis, prefix: str
) -> None:
    sink = open_sink("redis", {"url": URL, "stream_prefix": prefix}, "json")
    await sink.deliver([data_record(1), alerts_record(2)])
    await sink.close()

    fields = await _entries(redis_client, f"{prefix}:{CLIENT_ID}")
    assert [(f[b"cursor"], f[b"topic"], f[b"vin"]) for f in fields] == [
        (b"1", b"V", VIN.encode()),
        (b"2", b"alerts", VIN.encode()),
    ]
    assert fields[0][b"format"] == b"json" and fields[0][b"txid"] == b"1"
    assert fields[0][b"created_at"] == b"2026-01-01T12:00:01Z"
    record = orjson.loads(fields[1][b"data"])
    assert [a["name"] for a in record["payload"]["alerts"]] == ["ChargePortFault"] * 2


async def test_protobuf_entries_and_the_length_cap(
    redis_client: aioredis.Redis, prefix: str
) -> None:
    sink = open_sink("redis", {"url": URL, "stream_prefix": prefix, "maxlen": 1}, "protobuf")
    for cursor in range(1, 301):
        await sink.deliver([data_record(cursor, values={"Soc": cursor % 100})])
    await sink.close()

    key = f"{prefix}:{CLIENT_ID}"
    # MAXLEN ~ trims whole macro nodes, so the stream stays near the cap, far below 300.
    assert await redis_client.xlen(key) < 300
    last = (await _entries(redis_client, key))[-1]
    assert last[b"format"] == b"protobuf" and last[b"cursor"] == b"300"
    assert data_values(vehicle_data_pb2.Payload.FromString(last[b"data"])) == {"Soc": 0}


async def test_unreachable_server_is_a_nack() -> None:
    sink = open_sink("redis", {"url": "redis://127.0.0.1:1/0", "timeout_s": 1}, "json")
    with pytest.raises(SinkError, match=r"Redis at 127\.0\.0\.1:1"):
        await sink.deliver([data_record(1)])
    await sink.close()
