"""Device-link framing: a 5-byte header (type, correlation id) before a Tesla protobuf body.

See docs/device-protocol.md. Bodies are Tesla's own messages from `tesla-protocol`:
`RoutableMessage` for commands and replies, fleet-telemetry `Payload` for state. Only the
handshake and error frames carry JSON.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from enum import IntEnum
from typing import Any, NamedTuple

import orjson

HEADER = struct.Struct(">BI")
MAX_CORRELATION_ID = 2**32 - 1


class FrameType(IntEnum):
    HELLO = 1  # device → gateway, JSON: firmware, power state, static config
    WELCOME = 2  # gateway → device, JSON: server time, limits
    STATE = 3  # device → gateway, telemetry Payload: changed signals
    COMMAND = 4  # gateway → device, RoutableMessage
    REPLY = 5  # device → gateway, RoutableMessage (same correlation id as the command)
    PRESENCE = 6  # device → gateway, one byte: PowerState
    WAKE = 7  # gateway → device, empty body
    ERROR = 8  # either way, JSON {"error", "description"}
    TELEMETRY = 9  # device → gateway, telemetry Payload for streaming
    ALERTS = 10  # device → gateway, VehicleAlerts
    ERRORS = 11  # device → gateway, VehicleErrors
    # Streaming to developers (issue 5). The correlation id is the config's id throughout.
    STREAM = 12  # device → gateway, a fleet-telemetry envelope (flotta.telemetry.envelope)
    STREAM_ACK = 13  # gateway → device, the acknowledged record's txid (UTF-8)
    TELEMETRY_CONFIG = 14  # gateway → device, JSON {"client_id", "version", "config"}
    TELEMETRY_CONFIG_REMOVED = 15  # gateway → device, empty: stop streaming for that config
    TELEMETRY_CONFIG_ACK = 16  # device → gateway, JSON {"version", "ok", "error"}
    # gateway → device, several records' txids, each after its length byte (`encode_txids`);
    # sent instead of STREAM_ACKs to devices whose HELLO says "stream_acks": "batched".
    STREAM_ACKS = 17


_FRAME_TYPES: tuple[FrameType | None, ...] = tuple(
    FrameType(n) if n in FrameType._value2member_map_ else None for n in range(256)
)


class PowerState(IntEnum):
    ONLINE = 1
    ASLEEP = 2


class FrameError(ValueError):
    """A frame that cannot be decoded; the description says what is wrong."""


class Frame(NamedTuple):
    # A tuple, not a frozen dataclass: one is built per device frame, and a frozen dataclass's
    # __init__ costs about 1 µs of the gateway's read loop.

    type: FrameType
    correlation_id: int
    body: bytes


def encode(frame_type: FrameType, body: bytes = b"", correlation_id: int = 0) -> bytes:
    return HEADER.pack(frame_type, correlation_id) + body


def decode(data: bytes, max_bytes: int) -> Frame:
    """Split a binary WebSocket message into header and body, checking size and type."""
    if len(data) > max_bytes:
        raise FrameError(f"frame of {len(data)} bytes exceeds the {max_bytes}-byte limit")
    if len(data) < HEADER.size:
        raise FrameError(f"frame of {len(data)} bytes is shorter than the 5-byte header")
    raw_type, correlation_id = HEADER.unpack_from(data)
    frame_type = _FRAME_TYPES[raw_type]  # not FrameType(raw_type): 0.4 µs a frame
    if frame_type is None:
        raise FrameError(f"unknown frame type {raw_type}")
    return Frame(frame_type, correlation_id, data[HEADER.size :])


def encode_json(frame_type: FrameType, payload: dict[str, Any], correlation_id: int = 0) -> bytes:
    return encode(frame_type, orjson.dumps(payload), correlation_id)


def decode_json(frame: Frame) -> dict[str, Any]:
    try:
        payload = orjson.loads(frame.body)
    except orjson.JSONDecodeError as exc:
        raise FrameError(f"{frame.type.name} body is not valid JSON: {exc}") from exc
    if not isinstance(payload, dict):
        raise FrameError(f"{frame.type.name} body must be a JSON object")
    return payload


def error_frame(error: str, description: str, correlation_id: int = 0) -> bytes:
    return encode_json(
        FrameType.ERROR, {"error": error, "description": description}, correlation_id
    )


def encode_txids(txids: Iterable[bytes]) -> bytes:
    """A STREAM_ACKS body: each txid (at most 255 bytes) after a byte giving its length."""
    return b"".join([_LENGTH_BYTES[len(txid)] + txid for txid in txids])


def decode_txids(body: bytes) -> list[bytes]:
    """The txids of a STREAM_ACKS body; FrameError when it is cut short."""
    txids: list[bytes] = []
    at = 0
    while at < len(body):
        end = at + 1 + body[at]
        if end > len(body):
            raise FrameError("STREAM_ACKS body ends inside a txid")
        txids.append(body[at + 1 : end])
        at = end
    return txids


_LENGTH_BYTES = tuple(bytes([n]) for n in range(256))
