"""MQTT sink against the machine's Mosquitto: fleet-telemetry's topic layout and payloads."""

from __future__ import annotations

import asyncio
import os
import secrets

import aiomqtt
import orjson
import pytest
from tesla_protocol.telemetry import vehicle_alert_pb2

from flotta.adapters.sinks import open_sink
from flotta.ports.sinks import SinkError
from flotta.telemetry.records import StreamRecord
from tests.adapters.sample import VIN, alerts_record, data_record
from tests.conftest import service_reachable

HOST = os.environ.get("FLOTTA_TEST_MQTT_HOST", "127.0.0.1")
PORT = int(os.environ.get("FLOTTA_TEST_MQTT_PORT", "1883"))
WAIT_S = 5.0

pytestmark = pytest.mark.services


async def _publish_and_collect(
    records: list[StreamRecord], fmt: str, expected: int
) -> dict[str, aiomqtt.Message]:
    """Deliver through the sink while a subscriber on `<base>/#` collects `expected` messages."""
    service_reachable(HOST, PORT, "Mosquitto")
    base = f"flotta-test/{secrets.token_hex(4)}"
    received: dict[str, aiomqtt.Message] = {}
    async with aiomqtt.Client(
        HOST, PORT, protocol=aiomqtt.ProtocolVersion.V5, timeout=WAIT_S
    ) as subscriber:
        await subscriber.subscribe(f"{base}/#", qos=1)
        sink = open_sink("mqtt", {"host": HOST, "port": PORT, "topic_base": base}, fmt)
        try:
            await sink.deliver(records)
        finally:
            await sink.close()
        async with asyncio.timeout(WAIT_S):
            async for message in subscriber.messages:
                received[str(message.topic).removeprefix(base + "/")] = message
                if len(received) >= expected:
                    break
    return received


async def test_json_data_becomes_one_message_per_field() -> None:
    received = await _publish_and_collect([data_record(1)], "json", expected=4)

    assert set(received) == {f"{VIN}/v/{f}" for f in ("VehicleSpeed", "Location", "Gear", "Soc")}
    values = {topic.rsplit("/", 1)[1]: orjson.loads(m.payload) for topic, m in received.items()}
    assert values == {
        "VehicleSpeed": {"value": 34.5},
        "Location": {"value": {"latitude": 37.412374, "longitude": -122.145867}},
        "Gear": {"value": "ShiftStateD"},
        "Soc": {"value": 80},
    }
    message = received[f"{VIN}/v/Soc"]
    assert message.qos == 1
    assert ("cursor", "1") in message.properties.UserProperty  # type: ignore[union-attr]


async def test_json_alerts_current_and_history() -> None:
    received = await _publish_and_collect([alerts_record(2)], "json", expected=2)

    current = orjson.loads(received[f"{VIN}/alerts/ChargePortFault/current"].payload)
    history = orjson.loads(received[f"{VIN}/alerts/ChargePortFault/history"].payload)
    assert current == {
        "Name": "ChargePortFault",
        "StartedAt": "2026-01-01T11:59:50Z",
        "Audiences": ["Service"],
    }
    assert [a.get("EndedAt") for a in history] == ["2026-01-01T11:59:30Z", None]


async def test_protobuf_record_goes_to_the_topic_level() -> None:
    received = await _publish_and_collect([alerts_record(3)], "protobuf", expected=1)

    message = received[f"{VIN}/alerts"]
    alerts = vehicle_alert_pb2.VehicleAlerts.FromString(message.payload)
    assert alerts.vin == VIN and len(alerts.alerts) == 2


async def test_unreachable_broker_is_a_nack() -> None:
    sink = open_sink("mqtt", {"host": "127.0.0.1", "port": 1, "timeout_s": 1}, "json")
    with pytest.raises(SinkError, match=r"127\.0\.0\.1:1"):
        await sink.deliver([data_record(1)])
    await sink.close()
