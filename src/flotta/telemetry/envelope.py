"""Fleet Telemetry framing: the flatbuffers envelope around every record and ack (§9.4).

Built with the `flatbuffers` runtime's generic Builder, slot by slot, since the schema
(`FlatbuffersEnvelope`, `FlatbuffersStream`, `FlatbuffersStreamAck`) is tiny. Read directly
with `struct` on the ingest hot path; the runtime's generic Table reader stays as the reference
the direct reader is tested against.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import flatbuffers  # type: ignore[import-untyped, unused-ignore]
from flatbuffers import encode, number_types  # type: ignore[import-untyped, unused-ignore]
from flatbuffers.table import Table  # type: ignore[import-untyped, unused-ignore]

MESSAGE_STREAM = 4
"""`Message` union tag of a `FlatbuffersStream` (a record)."""
MESSAGE_ACK = 5
"""`Message` union tag of a `FlatbuffersStreamAck`."""

MAX_MESSAGE_BYTES = 1_000_000
"""The reference server refuses larger frames (§9.3)."""

VEHICLE_DEVICE = "vehicle_device"

# vtable slots of FlatbuffersEnvelope and FlatbuffersStream, in schema order (§9.4).
_ENV_TXID, _ENV_TOPIC, _ENV_TYPE, _ENV_MESSAGE, _ENV_MESSAGE_ID = range(5)
_STREAM_CREATED_AT, _STREAM_SENDER, _STREAM_PAYLOAD, _STREAM_DEVICE_TYPE = range(4)
_STREAM_DEVICE_ID, _STREAM_DELIVERED_AT = 4, 5


_U8 = struct.Struct("<B").unpack_from
_U16 = struct.Struct("<H").unpack_from
_U32 = struct.Struct("<I").unpack_from
_I32 = struct.Struct("<i").unpack_from
_U64 = struct.Struct("<Q").unpack_from
_VTABLES = [struct.Struct(f"<{n}H").unpack_from for n in range(7)]


class WireError(ValueError):
    """A frame that is not a well-formed fleet-telemetry envelope or record."""


@dataclass(frozen=True, slots=True)
class Envelope:
    """A `FlatbuffersEnvelope` with its `FlatbuffersStream` fields flattened (empty for acks)."""

    topic: str
    txid: bytes
    message_type: int = MESSAGE_STREAM
    message_id: bytes = b""
    created_at: int = 0
    sender_id: str = ""
    device_type: str = ""
    device_id: str = ""
    payload: bytes = b""
    delivered_at_epoch_ms: int = 0

    @property
    def is_ack(self) -> bool:
        """True for a server's acknowledgement of the record with the same txid."""
        return self.message_type == MESSAGE_ACK


def encode_envelope(envelope: Envelope) -> bytes:
    """Serialise an envelope: a `FlatbuffersStream` record, or an ack when `is_ack`."""
    builder = flatbuffers.Builder(256 + len(envelope.payload))
    if envelope.is_ack:
        builder.StartObject(0)
        message = builder.EndObject()
    else:
        message = _build_stream(builder, envelope)
    txid = builder.CreateByteVector(envelope.txid)
    topic = builder.CreateByteVector(envelope.topic.encode())
    message_id = builder.CreateByteVector(envelope.message_id)
    builder.StartObject(5)
    builder.PrependUOffsetTRelativeSlot(_ENV_TXID, txid, 0)
    builder.PrependUOffsetTRelativeSlot(_ENV_TOPIC, topic, 0)
    builder.PrependUint8Slot(_ENV_TYPE, envelope.message_type, 0)
    builder.PrependUOffsetTRelativeSlot(_ENV_MESSAGE, message, 0)
    builder.PrependUOffsetTRelativeSlot(_ENV_MESSAGE_ID, message_id, 0)
    builder.Finish(builder.EndObject())
    return bytes(builder.Output())


def _build_stream(builder: Any, envelope: Envelope) -> int:
    """Write the `FlatbuffersStream` table and return its offset."""
    sender = builder.CreateByteVector(envelope.sender_id.encode())
    payload = builder.CreateByteVector(envelope.payload)
    device_type = builder.CreateByteVector(envelope.device_type.encode())
    device_id = builder.CreateByteVector(envelope.device_id.encode())
    builder.StartObject(6)
    builder.PrependUint32Slot(_STREAM_CREATED_AT, envelope.created_at, 0)
    builder.PrependUOffsetTRelativeSlot(_STREAM_SENDER, sender, 0)
    builder.PrependUOffsetTRelativeSlot(_STREAM_PAYLOAD, payload, 0)
    builder.PrependUOffsetTRelativeSlot(_STREAM_DEVICE_TYPE, device_type, 0)
    builder.PrependUOffsetTRelativeSlot(_STREAM_DEVICE_ID, device_id, 0)
    builder.PrependUint64Slot(_STREAM_DELIVERED_AT, envelope.delivered_at_epoch_ms, 0)
    return int(builder.EndObject())


def decode_envelope(buf: bytes) -> Envelope:
    """Parse a frame into an `Envelope`; raise `WireError` when it is not one."""
    return _checked(buf, _scan_envelope)


def decode_envelope_table(buf: bytes) -> Envelope:
    """`decode_envelope` through the flatbuffers runtime's generic Table: the slow reference
    the direct reader is tested against."""
    return _checked(buf, _read_envelope)


def _checked(buf: bytes, reader: Callable[[bytes], Envelope]) -> Envelope:
    if len(buf) > MAX_MESSAGE_BYTES:
        raise WireError(f"message of {len(buf)} bytes exceeds {MAX_MESSAGE_BYTES}")
    if len(buf) < 8:
        raise WireError("message too short for a flatbuffers envelope")
    try:
        return reader(bytes(buf))
    except (IndexError, ValueError, struct.error) as exc:  # offsets of a corrupt buffer
        raise WireError(f"malformed flatbuffers envelope: {exc}") from exc


def scan_record(buf: bytes) -> tuple[int, bytes, bytes, bytes]:
    """(message type, topic, txid, payload) of a frame, and nothing else: what ingest needs per
    record, read as `decode_envelope` reads them (the other fields are not looked at)."""
    if len(buf) > MAX_MESSAGE_BYTES:
        raise WireError(f"message of {len(buf)} bytes exceeds {MAX_MESSAGE_BYTES}")
    if len(buf) < 8:
        raise WireError("message too short for a flatbuffers envelope")
    try:
        root = _U32(buf, 0)[0]
        # `_offsets`, not `_slots`: building a list per record cost a third of this function.
        txid, topic, kind, message = _offsets(buf, root, 4)
        txid, topic = txid and root + txid, topic and root + topic
        kind, message = kind and root + kind, message and root + message
        message_type = _U8(buf, kind)[0] if kind else 0
        payload = b""
        if message_type == MESSAGE_STREAM:
            if not message:
                raise WireError("record envelope without a FlatbuffersStream")
            payload = _vector(buf, _slot(buf, message + _U32(buf, message)[0], _STREAM_PAYLOAD))
        return message_type, _vector(buf, topic), _vector(buf, txid), payload
    except WireError:
        raise
    except (IndexError, ValueError, struct.error) as exc:  # offsets of a corrupt buffer
        raise WireError(f"malformed flatbuffers envelope: {exc}") from exc


def _slot(buf: bytes, table: int, index: int) -> int:
    """Absolute position of one field of a table (0: absent)."""
    vtable = table - _I32(buf, table)[0]
    if vtable < 0:
        raise WireError("vtable offset points before the start of the message")
    if _U16(buf, vtable)[0] < 6 + 2 * index:
        return 0
    offset: int = _U16(buf, vtable + 4 + 2 * index)[0]
    return table + offset if offset else 0


def _scan_envelope(buf: bytes) -> Envelope:
    """Read the envelope with struct alone: about ten times faster than the generic Table."""
    txid, topic, kind, message, message_id = _slots(buf, _U32(buf, 0)[0], 5)
    message_type = _U8(buf, kind)[0] if kind else 0
    topic_text, txid_bytes = _vector(buf, topic).decode(), _vector(buf, txid)
    message_id_bytes = _vector(buf, message_id)
    if message_type != MESSAGE_STREAM:
        return Envelope(topic_text, txid_bytes, message_type, message_id_bytes)
    if not message:
        raise WireError("record envelope without a FlatbuffersStream")
    created, sender, payload, device_type, device_id, delivered = _slots(
        buf, message + _U32(buf, message)[0], 6
    )
    return Envelope(
        topic_text,
        txid_bytes,
        message_type,
        message_id_bytes,
        created_at=_U32(buf, created)[0] if created else 0,
        sender_id=_vector(buf, sender).decode(),
        device_type=_vector(buf, device_type).decode(),
        device_id=_vector(buf, device_id).decode(),
        payload=_vector(buf, payload),
        delivered_at_epoch_ms=_U64(buf, delivered)[0] if delivered else 0,
    )


def _slots(buf: bytes, table: int, count: int) -> list[int]:
    """Absolute positions of a table's first `count` fields (0: absent), from its vtable."""
    return [offset and table + offset for offset in _offsets(buf, table, count)]


def _offsets(buf: bytes, table: int, count: int) -> tuple[int, ...]:
    """A table's first `count` field offsets, relative to the table (0: absent), read from its
    vtable in one `struct` call."""
    vtable = table - _I32(buf, table)[0]
    if vtable < 0:  # struct would read a negative offset from the end instead of failing
        raise WireError("vtable offset points before the start of the message")
    size = _U16(buf, vtable)[0]
    present = count if size >= 4 + 2 * count else max(size - 4, 0) // 2
    offsets: tuple[int, ...] = _VTABLES[present](buf, vtable + 4)
    # A builder leaves trailing absent fields out of the vtable: they read as 0.
    return offsets if present == count else offsets + (0,) * (count - present)


def _vector(buf: bytes, field: int) -> bytes:
    """A `[ubyte]` field, empty when absent; bounds-checked against the buffer."""
    if not field:
        return b""
    start = field + _U32(buf, field)[0]
    length = _U32(buf, start)[0]
    start += 4
    if start + length > len(buf):
        raise WireError("vector runs past the end of the message")
    return buf[start : start + length]


def _read_envelope(buf: bytes) -> Envelope:
    """Walk the envelope and, for records, its stream table."""
    root = Table(buf, encode.Get(number_types.UOffsetTFlags.packer_type, buf, 0))
    message_type = _scalar(root, _ENV_TYPE, number_types.Uint8Flags)
    topic, txid = _bytes(root, _ENV_TOPIC).decode(), _bytes(root, _ENV_TXID)
    message_id = _bytes(root, _ENV_MESSAGE_ID)
    if message_type != MESSAGE_STREAM:
        return Envelope(topic, txid, message_type, message_id)
    slot = root.Offset(4 + 2 * _ENV_MESSAGE)
    if not slot:
        raise WireError("record envelope without a FlatbuffersStream")
    stream = Table(buf, 0)
    root.Union(stream, slot)
    return Envelope(
        topic,
        txid,
        message_type,
        message_id,
        created_at=_scalar(stream, _STREAM_CREATED_AT, number_types.Uint32Flags),
        sender_id=_bytes(stream, _STREAM_SENDER).decode(),
        device_type=_bytes(stream, _STREAM_DEVICE_TYPE).decode(),
        device_id=_bytes(stream, _STREAM_DEVICE_ID).decode(),
        payload=_bytes(stream, _STREAM_PAYLOAD),
        delivered_at_epoch_ms=_scalar(stream, _STREAM_DELIVERED_AT, number_types.Uint64Flags),
    )


def _bytes(table: Any, slot: int) -> bytes:
    """A `[ubyte]` field, empty when absent; bounds-checked against the buffer."""
    offset = table.Offset(4 + 2 * slot)
    if not offset:
        return b""
    start, length = table.Vector(offset), table.VectorLen(offset)
    if start + length > len(table.Bytes):
        raise WireError("vector runs past the end of the message")
    return bytes(table.Bytes[start : start + length])


def _scalar(table: Any, slot: int, flags: Any) -> int:
    """A scalar field, 0 when absent."""
    return int(table.GetSlot(4 + 2 * slot, 0, flags))


def stream_envelope(
    topic: str,
    payload: bytes,
    *,
    vin: str,
    created_at_s: float,
    txid: bytes,
    message_id: bytes = b"",
) -> bytes:
    """A car's record frame: sender `vehicle_device.<VIN>`, device id the VIN."""
    return encode_envelope(
        Envelope(
            topic=topic,
            txid=txid,
            message_id=message_id,
            created_at=int(created_at_s),
            sender_id=f"{VEHICLE_DEVICE}.{vin}",
            device_type=VEHICLE_DEVICE,
            device_id=vin,
            payload=payload,
        )
    )


def ack_envelope(txid: bytes, topic: str, message_id: bytes = b"") -> bytes:
    """The server's ack for the record with this txid and topic."""
    return encode_envelope(
        Envelope(topic=topic, txid=txid, message_type=MESSAGE_ACK, message_id=message_id)
    )
