"""MQTT sink (aiomqtt, MQTT 5, QoS 1) in fleet-telemetry's MQTT topic layout (§9.7).

JSON format, as the reference `mqtt` dispatcher publishes:
- `<base>/<VIN>/v/<Field>`: one message per datum, `{"value": <decoded value>}`;
- `<base>/<VIN>/alerts/<name>/current` (latest start) and `.../history` (all in the record);
- `<base>/<VIN>/errors/<name>` and `<base>/<VIN>/connectivity`.
Protobuf format: the record's payload to `<base>/<VIN>/<topic>`. Every message carries the
record's metadata as MQTT 5 user properties. A batch is delivered once every PUBACK is in.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aiomqtt
import orjson
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from flotta.ports.sinks import SinkError, reason_of
from flotta.telemetry import formats
from flotta.telemetry.formats import SinkFormat
from flotta.telemetry.records import StreamRecord
from flotta.telemetry.wire import (
    TOPIC_ALERTS,
    TOPIC_CONNECTIVITY,
    TOPIC_DATA,
    TOPIC_ERRORS,
    data_values,
)

QOS = 1
INVALID = "<invalid>"  # what the reference dispatcher publishes for an `invalid` value
_TOPIC_UNSAFE = re.compile(r"[/+#\x00]")
_SEMI_MODEL_LETTER = "T"  # 4th VIN character of a Tesla Semi


@dataclass(frozen=True, slots=True)
class MqttMessage:
    """One message to publish."""

    topic: str
    payload: bytes


def _level(name: str) -> str:
    """A topic level from a free-form name: no separators or wildcards."""
    return _TOPIC_UNSAFE.sub("_", name) or "_"


def _rfc3339(timestamp: Any) -> str:
    """A protobuf Timestamp as Go's `time.RFC3339` (second precision, `Z`)."""
    moment = datetime.fromtimestamp(timestamp.seconds, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _pascal(name: str) -> str:
    """`semi_middle_axle_left_2` -> `SemiMiddleAxleLeft2`."""
    return "".join(part[:1].upper() + part[1:] for part in name.split("_"))


def json_value(value: Any, vin: str) -> Any:
    """A decoded datum value as the reference dispatcher renders it."""
    if value is None:
        return INVALID
    if isinstance(value, tuple):
        return {"latitude": value[0], "longitude": value[1]}
    if isinstance(value, dict) and any("_" in key for key in value):  # TireLocation flags
        flags = {_pascal(key): flag for key, flag in value.items()}
        if vin[3:4] != _SEMI_MODEL_LETTER:
            flags = {k: flags[k] for k in ("FrontLeft", "FrontRight", "RearLeft", "RearRight")}
        return flags
    return value


def _alert_map(alert: Any) -> dict[str, Any]:
    """A `VehicleAlert` as the reference dispatcher's JSON object."""
    result: dict[str, Any] = {"Name": alert.name}
    if alert.HasField("started_at"):
        result["StartedAt"] = _rfc3339(alert.started_at)
    if alert.HasField("ended_at"):
        result["EndedAt"] = _rfc3339(alert.ended_at)
    result["Audiences"] = [
        alert.DESCRIPTOR.fields_by_name["audiences"].enum_type.values_by_number[a].name
        for a in alert.audiences
    ]
    return result


def _alert_messages(base: str, message: Any) -> list[MqttMessage]:
    """`current` (the latest-started alert per name) and `history` (all of them) per name."""
    history: dict[str, list[Any]] = {}
    current: dict[str, Any] = {}
    for alert in message.alerts:
        history.setdefault(alert.name, []).append(alert)
        if alert.HasField("started_at"):
            latest = current.get(alert.name)
            if (
                latest is None
                or alert.started_at.ToNanoseconds() > latest.started_at.ToNanoseconds()
            ):
                current[alert.name] = alert
    out = [
        MqttMessage(f"{base}/alerts/{_level(name)}/current", orjson.dumps(_alert_map(alert)))
        for name, alert in current.items()
    ]
    out += [
        MqttMessage(
            f"{base}/alerts/{_level(name)}/history",
            orjson.dumps([_alert_map(alert) for alert in alerts]),
        )
        for name, alerts in history.items()
    ]
    return out


def _error_messages(base: str, message: Any) -> list[MqttMessage]:
    """One message per vehicle error."""
    out = []
    for error in message.errors:
        body: dict[str, Any] = {"Name": error.name, "Body": error.body, "Tags": dict(error.tags)}
        if error.HasField("created_at"):
            body["CreatedAt"] = _rfc3339(error.created_at)
        out.append(MqttMessage(f"{base}/errors/{_level(error.name)}", orjson.dumps(body)))
    return out


def _connectivity_message(base: str, message: Any) -> MqttMessage:
    """The connectivity event."""
    body = {
        "ConnectionId": message.connection_id,
        "Status": message.DESCRIPTOR.fields_by_name["status"]
        .enum_type.values_by_number[message.status]
        .name,
        "NetworkInterface": message.network_interface,
        "CreatedAt": _rfc3339(message.created_at),
    }
    return MqttMessage(f"{base}/connectivity", orjson.dumps(body))


def messages_for(record: StreamRecord, topic_base: str, fmt: SinkFormat) -> list[MqttMessage]:
    """Every MQTT message one record becomes."""
    base = f"{topic_base}/{_level(record.vin)}"
    if fmt == "protobuf":
        return [MqttMessage(f"{base}/{_level(record.topic)}", record.payload)]
    message = formats.decode_payload(record)
    if message is None:
        return []
    if record.topic == TOPIC_DATA:
        return [
            MqttMessage(
                f"{base}/v/{_level(name)}",
                orjson.dumps({"value": json_value(value, record.vin)}),
            )
            for name, value in data_values(message).items()
        ]
    if record.topic == TOPIC_ALERTS:
        return _alert_messages(base, message)
    if record.topic == TOPIC_ERRORS:
        return _error_messages(base, message)
    if record.topic == TOPIC_CONNECTIVITY:
        return [_connectivity_message(base, message)]
    return []


def _properties(record: StreamRecord, fmt: SinkFormat) -> Properties:
    """MQTT 5 publish properties: content type and the record's metadata."""
    properties = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
    properties.ContentType = formats.content_type(fmt)
    properties.UserProperty = list(formats.metadata(record).items())
    return properties


class MqttSink:
    """Publishes to the app's broker with QoS 1; reconnects on the next batch after a failure."""

    def __init__(
        self,
        host: str,
        port: int,
        topic_base: str,
        fmt: SinkFormat,
        *,
        username: str | None = None,
        password: str | None = None,
        tls: bool = False,
        timeout_s: float = 5.0,
    ) -> None:
        self._host, self._port, self._base, self._fmt = host, port, topic_base, fmt
        self._username, self._password, self._tls = username, password, tls
        self._timeout_s = timeout_s
        self._client: aiomqtt.Client | None = None

    async def _connect(self) -> aiomqtt.Client:
        """The connected client, connecting when there is none."""
        if self._client is not None:
            return self._client
        client = aiomqtt.Client(
            self._host,
            self._port,
            username=self._username,
            password=self._password,
            # Unique per connection: a broker drops the older of two sessions with one id.
            identifier=f"flotta-sink-{uuid.uuid4().hex[:12]}",
            protocol=aiomqtt.ProtocolVersion.V5,
            timeout=self._timeout_s,
            tls_params=aiomqtt.TLSParameters() if self._tls else None,
        )
        await client.__aenter__()
        self._client = client
        return client

    async def deliver(self, batch: Sequence[StreamRecord]) -> None:
        """Publish every message of every record and wait for all their PUBACKs."""
        if not batch:
            return
        try:
            client = await self._connect()
            # Publishes are issued in order (each task calls paho before its first await).
            await asyncio.gather(
                *(
                    client.publish(
                        message.topic,
                        message.payload,
                        qos=QOS,
                        properties=_properties(record, self._fmt),
                        timeout=self._timeout_s,
                    )
                    for record in batch
                    for message in messages_for(record, self._base, self._fmt)
                )
            )
        except (aiomqtt.MqttError, OSError, TimeoutError) as exc:
            await self._drop()
            reason = reason_of(exc)
            raise SinkError(f"MQTT broker at {self._host}:{self._port}: {reason}") from exc

    async def _drop(self) -> None:
        """Disconnect so the next delivery reconnects."""
        client, self._client = self._client, None
        if client is not None:
            # Already gone after a failure: nothing is left to close then.
            with contextlib.suppress(aiomqtt.MqttError, OSError, TimeoutError):
                await client.__aexit__(None, None, None)

    async def close(self) -> None:
        """Disconnect from the broker."""
        await self._drop()
