"""NATS JetStream sink against the machine's NATS: stream created, records consumed back."""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator

import orjson
import pytest
from nats.aio.client import Client
from nats.aio.msg import Msg
from tesla_protocol.telemetry import vehicle_data_pb2

from flotta.adapters.sinks import SinkSettingsError, open_sink, validate_sink_settings
from flotta.ports.sinks import SinkError
from flotta.telemetry.wire import data_values
from tests.adapters.sample import OTHER_VIN, VIN, alerts_record, data_record
from tests.conftest import service_reachable

HOST = os.environ.get("FLOTTA_TEST_NATS_HOST", "127.0.0.1")
PORT = int(os.environ.get("FLOTTA_TEST_NATS_PORT", "4222"))
URL = f"nats://{HOST}:{PORT}"
WAIT_S = 5.0

pytestmark = pytest.mark.services


@pytest.fixture
async def nc() -> AsyncIterator[Client]:
    service_reachable(HOST, PORT, "NATS")
    client = Client()
    await client.connect(URL, connect_timeout=2, max_reconnect_attempts=0)
    try:
        yield client
    finally:
        await client.close()


@pytest.fixture
def names(nc: Client) -> tuple[str, str]:
    """A stream name and subject prefix of this test only."""
    run = secrets.token_hex(4)
    return f"FLOTTA_TEST_{run}", f"flotta_test_{run}.telemetry"


async def _drain(nc: Client, stream: str, subject: str, count: int) -> list[Msg]:
    js = nc.jetstream(timeout=WAIT_S)
    sub = await js.pull_subscribe(subject, stream=stream)
    messages = await sub.fetch(count, timeout=WAIT_S)
    for message in messages:
        await message.ack()
    return list(messages)


async def test_json_records_land_on_vin_topic_subjects(nc: Client, names: tuple[str, str]) -> None:
    stream, prefix = names
    js = nc.jetstream(timeout=WAIT_S)
    settings = {"url": URL, "stream": stream, "subject_prefix": prefix, "timeout_s": WAIT_S}
    sink = open_sink("nats", settings, "json")
    try:
        await sink.deliver([data_record(1), alerts_record(2), data_record(3, vin=OTHER_VIN)])
        info = await js.stream_info(stream)  # created by the sink
        assert info.config.subjects == [f"{prefix}.>"]
        assert info.state.messages == 3

        messages = await _drain(nc, stream, f"{prefix}.>", 3)
        subjects = [m.subject for m in messages]
        assert subjects == [
            f"{prefix}.{VIN}.V",
            f"{prefix}.{VIN}.alerts",
            f"{prefix}.{OTHER_VIN}.V",
        ]
        first = messages[0]
        assert first.headers is not None
        assert first.headers["Flotta-Cursor"] == "1"
        assert first.headers["Flotta-Vin"] == VIN
        assert first.headers["Content-Type"] == "application/json"
        body = orjson.loads(first.data)
        assert (body["cursor"], body["vin"], body["topic"]) == (1, VIN, "V")
    finally:
        await sink.close()
        await js.delete_stream(stream)


async def test_protobuf_payloads_and_retried_batch_is_deduplicated(
    nc: Client, names: tuple[str, str]
) -> None:
    stream, prefix = names
    js = nc.jetstream(timeout=WAIT_S)
    settings = {"url": URL, "stream": stream, "subject_prefix": prefix}
    sink = open_sink("nats", settings, "protobuf")
    batch = [data_record(7), data_record(8, values={"Soc": 12})]
    try:
        await sink.deliver(batch)
        await sink.deliver(batch)  # a retry after a lost ack: same Nats-Msg-Id
        assert (await js.stream_info(stream)).state.messages == 2
        messages = await _drain(nc, stream, f"{prefix}.{VIN}.V", 2)
        socs = [data_values(vehicle_data_pb2.Payload.FromString(m.data))["Soc"] for m in messages]
        assert socs == [80, 12]
    finally:
        await sink.close()
        await js.delete_stream(stream)


async def test_unreachable_server_is_a_nack_naming_it() -> None:
    sink = open_sink("nats", {"url": "nats://127.0.0.1:1", "timeout_s": 1}, "json")
    with pytest.raises(SinkError, match=r"127\.0\.0\.1:1"):
        await sink.deliver([data_record(1)])
    await sink.close()


def test_settings_are_validated_and_defaulted() -> None:
    assert validate_sink_settings("nats", {"url": URL})["stream"] == "FLOTTA_TELEMETRY"
    with pytest.raises(SinkSettingsError) as caught:
        validate_sink_settings("nats", {"url": "http://x", "subject_prefix": "a..b"})
    assert set(caught.value.messages or {}) == {"settings.url", "settings.subject_prefix"}
