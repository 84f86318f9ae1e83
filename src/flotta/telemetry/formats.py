"""How a streamed record leaves for a sink: JSON (decoded, like fleet-telemetry's
`transmit_decoded_records`) or protobuf (the payload bytes, metadata carried by the transport).

JSON shape of one record::

    {"cursor": 42, "client_id": "…", "vin": "…", "topic": "V", "txid": "7",
     "created_at": "2026-01-01T12:00:00.250000Z", "signals": 3,
     "payload": {"data": [{"key": "VehicleSpeed", "value": {"doubleValue": 34.8}}], …}}

`payload` is the protojson of the topic's message (enum names, lowerCamelCase, unpopulated
fields emitted), as the reference server's decoded records look (§9.7).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC
from typing import Any, Literal
from urllib.parse import quote

import orjson
from google.protobuf import json_format
from google.protobuf.message import DecodeError

from flotta.telemetry import wire
from flotta.telemetry.records import StreamRecord

SinkFormat = Literal["json", "protobuf"]
FORMATS: tuple[SinkFormat, ...] = ("json", "protobuf")

JSON_CONTENT_TYPE = "application/json"
PROTOBUF_CONTENT_TYPE = "application/x-protobuf"
DELIMITED_CONTENT_TYPE = "application/x-protobuf; delimited=true"


def content_type(fmt: SinkFormat) -> str:
    """The content type of one record's body in `fmt`."""
    return JSON_CONTENT_TYPE if fmt == "json" else PROTOBUF_CONTENT_TYPE


def decode_payload(record: StreamRecord) -> Any:
    """The record's protobuf message (`Payload`, `VehicleAlerts`, …), or None for other topics."""
    message_class = wire.MESSAGES.get(record.topic)
    if message_class is None:
        return None
    message = message_class()
    try:
        message.ParseFromString(record.payload)
    except DecodeError:
        # Ingest decoded it before storing it, so this is corruption: send `payload: null`.
        return None
    return message


def payload_json(record: StreamRecord) -> dict[str, Any] | None:
    """The protojson form of the record's message; None when the topic is unknown."""
    message = decode_payload(record)
    if message is None:
        return None
    result: dict[str, Any] = json_format.MessageToDict(
        message, always_print_fields_with_no_presence=True
    )
    return result


def iso_time(record: StreamRecord) -> str:
    """The record's ingest time as RFC 3339 UTC with a `Z`."""
    return record.created_at.astimezone(UTC).isoformat().replace("+00:00", "Z")


def record_json(record: StreamRecord) -> dict[str, Any]:
    """One record as the JSON object every JSON sink sends."""
    return {
        "cursor": record.cursor,
        "client_id": record.client_id,
        "vin": record.vin,
        "topic": record.topic,
        "txid": record.txid,
        "created_at": iso_time(record),
        "signals": record.signals,
        "payload": payload_json(record),
    }


def record_json_bytes(record: StreamRecord) -> bytes:
    """One record as JSON bytes."""
    return orjson.dumps(record_json(record))


def batch_json_bytes(batch: Sequence[StreamRecord]) -> bytes:
    """A batch as a JSON array of records."""
    return orjson.dumps([record_json(record) for record in batch])


def record_bytes(record: StreamRecord, fmt: SinkFormat) -> bytes:
    """One record's body in the sink's format: JSON object or the protobuf payload."""
    return record_json_bytes(record) if fmt == "json" else record.payload


def metadata(record: StreamRecord) -> dict[str, str]:
    """The record's metadata as strings, for transport headers/properties/fields."""
    return {
        "cursor": str(record.cursor),
        "client_id": record.client_id,
        "vin": record.vin,
        "topic": record.topic,
        "txid": record.txid,
        "created_at": iso_time(record),
        "signals": str(record.signals),
    }


def _varint(value: int) -> bytes:
    """A protobuf base-128 varint."""
    out = bytearray()
    while True:
        bits, value = value & 0x7F, value >> 7
        if value:
            out.append(bits | 0x80)
        else:
            out.append(bits)
            return bytes(out)


def delimited(payloads: Sequence[bytes]) -> bytes:
    """Payloads each prefixed by its varint length (protobuf's `writeDelimitedTo` framing)."""
    return b"".join(_varint(len(payload)) + payload for payload in payloads)


def read_delimited(buf: bytes) -> list[bytes]:
    """Split a length-delimited stream back into payloads (for consumers and tests)."""
    items: list[bytes] = []
    pos = 0
    while pos < len(buf):
        length = shift = 0
        while True:
            if pos >= len(buf):
                raise ValueError("truncated varint length")
            byte = buf[pos]
            pos += 1
            length |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                break
        if pos + length > len(buf):
            raise ValueError("delimited payload runs past the end")
        items.append(buf[pos : pos + length])
        pos += length
    return items


def batch_headers(batch: Sequence[StreamRecord]) -> dict[str, str]:
    """Per-record metadata of a protobuf batch as comma lists, in body order (txids quoted)."""
    columns: Mapping[str, list[str]] = {
        "flotta-cursors": [str(r.cursor) for r in batch],
        "flotta-vins": [r.vin for r in batch],
        "flotta-topics": [r.topic for r in batch],
        "flotta-txids": [quote(r.txid, safe="") for r in batch],
        "flotta-created-at": [iso_time(r) for r in batch],
    }
    headers = {name: ",".join(values) for name, values in columns.items()}
    if batch:
        headers["flotta-client-id"] = batch[0].client_id
    return headers
