"""Fleet Telemetry wire format: flatbuffers envelopes around protobuf records (§9.4-9.5).

Encodes what a car sends to a fleet-telemetry server (topics `V`, `alerts`, `errors`, plus the
server-side `connectivity`) and decodes them for the gateway's ingest; framing is in `envelope`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal, TypeAlias

from google.protobuf.message import DecodeError
from google.protobuf.timestamp_pb2 import Timestamp
from tesla_protocol.telemetry import (
    vehicle_alert_pb2,
    vehicle_connectivity_pb2,
    vehicle_data_pb2,
    vehicle_error_pb2,
)

from flotta.telemetry.emitter import Location, TelemetryRecord, TelemetryValue
from flotta.telemetry.envelope import (
    MESSAGE_ACK,
    MESSAGE_STREAM,
    Envelope,
    WireError,
    decode_envelope,
    scan_record,
    stream_envelope,
)
from flotta.telemetry.fields import FIELD_NUMBERS, FIRST_ALWAYS_TYPED_NUMBER

TOPIC_DATA = "V"
TOPIC_ALERTS = "alerts"
TOPIC_ERRORS = "errors"
TOPIC_CONNECTIVITY = "connectivity"

_INT32_MIN, _INT32_MAX = -(2**31), 2**31 - 1
_SCIENTIFIC = re.compile(r"^[+-]?(\d*\.\d+|\d+\.\d*)([eE][+-]?\d+)$")
_LOCATION_TEXT = re.compile(r"^\(\s*([0-9.]+)\s*([NS]),\s*([0-9.]+)\s*([EW])\)$")
# Byte patterns every text `normalise_payload` rewrites contains (supersets: `\d` and `\s` of
# the text patterns also match non-ASCII digits and spaces, whose UTF-8 bytes are >= 0x80).
# A `V` payload matching neither needs no rewrite, so ingest skips walking its data.
_MAY_BE_SCIENTIFIC = re.compile(rb"\.(?:[0-9]|[\x80-\xff])*[eE]")
_MAY_BE_LOCATION = re.compile(rb"\([^)]*[NS],")
MAX_TXID_BYTES = 64
"""Longer txids are refused: fleet-telemetry's are UUIDs, and the record log keeps 64."""
# One regex call: three `bytes` tests (length, newline, NUL) cost twice as much per record.
_USABLE_TXID = re.compile(rb"[^\n\x00]{1,%d}" % MAX_TXID_BYTES)

DecodedValue: TypeAlias = TelemetryValue | Mapping[str, bool]
"""A decoded value: our plain values, plus flag maps for `Doors` and `TireLocation`."""

# Each fleet-telemetry topic's protobuf message.
MESSAGES: Mapping[str, Any] = {
    TOPIC_DATA: vehicle_data_pb2.Payload,
    TOPIC_ALERTS: vehicle_alert_pb2.VehicleAlerts,
    TOPIC_ERRORS: vehicle_error_pb2.VehicleErrors,
    TOPIC_CONNECTIVITY: vehicle_connectivity_pb2.VehicleConnectivity,
}


_STREAMABLE: Mapping[bytes, tuple[str, Any]] = {
    topic.encode(): (topic, message) for topic, message in MESSAGES.items()
}


def _enum_index() -> dict[str, tuple[str, int]]:
    """Every enum value name of a `Value` oneof member -> (oneof member, number)."""
    index: dict[str, tuple[str, int]] = {}
    for member in vehicle_data_pb2.Value.DESCRIPTOR.oneofs_by_name["value"].fields:
        if member.enum_type is not None:
            for enum_value in member.enum_type.values:
                index[enum_value.name] = (member.name, enum_value.number)
    return index


_ENUM_VALUES = _enum_index()
_LOCATION_NUMBER = FIELD_NUMBERS["Location"]


@dataclass(frozen=True, slots=True)
class Alert:
    """One vehicle alert; active while `ended_at_s` is None."""

    name: str
    started_at_s: float
    audiences: tuple[str, ...] = ("Service",)
    ended_at_s: float | None = None


@dataclass(frozen=True, slots=True)
class ErrorReport:
    """One vehicle-side telemetry error (`VehicleError`)."""

    name: str
    created_at_s: float
    body: str = ""
    tags: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class DecodedRecord:
    """A decoded frame: its envelope and the protobuf message its topic carries (None if none)."""

    envelope: Envelope
    message: Any
    # True when normalising rewrote the `V` payload: only then must it be serialised again.
    rewritten: bool = False

    @property
    def payload(self) -> bytes:
        """The protobuf message as the reference server dispatches it (after its rewrites)."""
        if self.rewritten:
            return bytes(self.message.SerializeToString())
        return self.envelope.payload

    @property
    def topic(self) -> str:
        """The record type: `V`, `alerts`, `errors` or `connectivity`."""
        return self.envelope.topic

    @property
    def txid(self) -> bytes:
        """The transaction id an ack must echo."""
        return self.envelope.txid

    @property
    def vin(self) -> str:
        """The VIN in the payload, else the envelope's device id."""
        vin = getattr(self.message, "vin", "") if self.message is not None else ""
        return str(vin) or self.envelope.device_id


# --- protobuf values ---------------------------------------------------------------------------


def to_value(value: TelemetryValue, *, typed: bool) -> Any:
    """A `Value` message: typed (numbers, enums, locations) or the string form older fields use."""
    message = vehicle_data_pb2.Value()
    if value is None or (not typed and isinstance(value, float) and not math.isfinite(value)):
        message.invalid = True
    elif not typed:
        message.string_value = _as_text(value)
    elif isinstance(value, bool):
        message.boolean_value = value
    elif isinstance(value, int):
        if _INT32_MIN <= value <= _INT32_MAX:
            message.int_value = value
        else:
            message.long_value = value
    elif isinstance(value, float):
        message.double_value = value
    elif isinstance(value, tuple):
        message.location_value.latitude, message.location_value.longitude = value
    elif value in _ENUM_VALUES:
        member, number = _ENUM_VALUES[value]
        setattr(message, member, number)
    else:
        message.string_value = value
    return message


def _as_text(value: float | int | bool | str | Location) -> str:
    """The string form: Go-style booleans, fixed-point numbers, `(lat N, lon W)` locations."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        # Fixed notation: the reference server would otherwise rewrite `1e-05` to 5 decimals.
        return format(Decimal(repr(value)), "f")
    if isinstance(value, tuple):
        lat, lon = value
        north, east = ("S" if lat < 0 else "N"), ("W" if lon < 0 else "E")
        return f"({abs(lat):.6f} {north}, {abs(lon):.6f} {east})"
    return str(value)


def from_value(message: Any) -> DecodedValue:
    """The plain value of a `Value`: enums as their names, `invalid` as None."""
    member = message.WhichOneof("value")
    if member is None or member == "invalid":
        return None
    raw = getattr(message, member)
    if member == "location_value":
        return (float(raw.latitude), float(raw.longitude))
    if member == "time_value":
        return f"{raw.hour:02d}:{raw.minute:02d}:{raw.second:02d}"
    if member in ("door_value", "tire_location_value"):
        return {flag.name: bool(getattr(raw, flag.name)) for flag in raw.DESCRIPTOR.fields}
    descriptor = message.DESCRIPTOR.fields_by_name[member]
    if descriptor.enum_type is not None:
        enum_value = descriptor.enum_type.values_by_number.get(raw)
        return enum_value.name if enum_value is not None else int(raw)
    if isinstance(raw, bool | int | float | str):
        return raw
    return str(raw)


def _timestamp(seconds: float) -> Timestamp:
    """A protobuf Timestamp at epoch `seconds`."""
    # Split before scaling: epoch seconds times 1e9 exceeds a double's exact range.
    whole = math.floor(seconds)
    nanos = round((seconds - whole) * 1e9)
    if nanos >= 1_000_000_000:
        whole, nanos = whole + 1, nanos - 1_000_000_000
    return Timestamp(seconds=whole, nanos=nanos)


# --- records -----------------------------------------------------------------------------------


def data_payload(record: TelemetryRecord, *, vin: str, prefer_typed: bool) -> Any:
    """The `Payload` of a `V` record; fields from 179 on are typed whatever `prefer_typed` says."""
    payload = vehicle_data_pb2.Payload(vin=vin, is_resend=record.is_resend)
    payload.created_at.CopyFrom(_timestamp(record.created_at_s))
    for name, value in record.data.items():
        number = FIELD_NUMBERS.get(name)
        if number is None:
            raise ValueError(f"{name!r} is not a fleet-telemetry field")
        typed = prefer_typed or number >= FIRST_ALWAYS_TYPED_NUMBER
        payload.data.add(key=number).value.CopyFrom(to_value(value, typed=typed))
    return payload


def encode_data(
    record: TelemetryRecord, *, vin: str, prefer_typed: bool, txid: bytes | None = None
) -> bytes:
    """A `V` frame as a car sends it; the txid defaults to the record's number."""
    payload = data_payload(record, vin=vin, prefer_typed=prefer_typed).SerializeToString()
    return stream_envelope(
        TOPIC_DATA,
        payload,
        vin=vin,
        created_at_s=record.created_at_s,
        txid=txid if txid is not None else record_txid(record.seq),
    )


def record_txid(seq: int) -> bytes:
    """The txid under which a numbered record travels, so its ack can be matched back."""
    return str(seq).encode()


def encode_alerts(alerts: Sequence[Alert], *, vin: str, created_at_s: float, txid: bytes) -> bytes:
    """An `alerts` frame (`VehicleAlerts`)."""
    message = vehicle_alert_pb2.VehicleAlerts(vin=vin)
    for alert in alerts:
        entry = message.alerts.add(name=alert.name)
        entry.audiences.extend(vehicle_alert_pb2.Audience.Value(a) for a in alert.audiences)
        entry.started_at.CopyFrom(_timestamp(alert.started_at_s))
        if alert.ended_at_s is not None:
            entry.ended_at.CopyFrom(_timestamp(alert.ended_at_s))
    return _frame(TOPIC_ALERTS, message, vin=vin, created_at_s=created_at_s, txid=txid)


def encode_errors(
    errors: Sequence[ErrorReport], *, vin: str, created_at_s: float, txid: bytes
) -> bytes:
    """An `errors` frame (`VehicleErrors`)."""
    message = vehicle_error_pb2.VehicleErrors(vin=vin)
    for error in errors:
        entry = message.errors.add(name=error.name, body=error.body)
        entry.tags.update(error.tags)
        entry.created_at.CopyFrom(_timestamp(error.created_at_s))
    return _frame(TOPIC_ERRORS, message, vin=vin, created_at_s=created_at_s, txid=txid)


def encode_connectivity(
    status: Literal["CONNECTED", "DISCONNECTED"],
    *,
    vin: str,
    connection_id: str,
    created_at_s: float,
    txid: bytes,
    network_interface: str = "",
) -> bytes:
    """A `connectivity` frame (`VehicleConnectivity`), as the server emits on socket open/close."""
    message = vehicle_connectivity_pb2.VehicleConnectivity(
        vin=vin,
        connection_id=connection_id,
        status=vehicle_connectivity_pb2.ConnectivityEvent.Value(status),
        network_interface=network_interface,
    )
    return _frame(TOPIC_CONNECTIVITY, message, vin=vin, created_at_s=created_at_s, txid=txid)


def _frame(topic: str, message: Any, *, vin: str, created_at_s: float, txid: bytes) -> bytes:
    """Stamp a record message with its creation time and wrap it in a car's envelope."""
    message.created_at.CopyFrom(_timestamp(created_at_s))
    payload = message.SerializeToString()
    return stream_envelope(topic, payload, vin=vin, created_at_s=created_at_s, txid=txid)


def decode_record(buf: bytes, *, normalise: bool = True) -> DecodedRecord:
    """Decode a frame; `normalise` applies the reference server's `V` rewrites (§9.5)."""
    envelope = decode_envelope(buf)
    message_class = MESSAGES.get(envelope.topic)
    if envelope.is_ack or message_class is None:
        return DecodedRecord(envelope, None)
    message = message_class()
    try:
        message.ParseFromString(envelope.payload)
    except DecodeError as exc:
        raise WireError(f"malformed {envelope.topic!r} payload: {exc}") from exc
    rewritten = normalise and envelope.topic == TOPIC_DATA and normalise_payload(message)
    return DecodedRecord(envelope, message, rewritten)


def decode_stream(body: bytes) -> tuple[str, bytes, bytes, int, bool]:
    """What ingest keeps of a STREAM frame's envelope: (topic, txid, payload as the reference
    server dispatches it, billable signals, is_resend). `WireError` for anything that is not a
    record of a known topic with a usable txid.

    The lean path of `decode_record`: only the envelope fields it needs, and the normalising
    walk over a `V` payload's data only when its bytes could hold a text to rewrite."""
    kind, topic_bytes, txid, payload = scan_record(body)
    known = _STREAMABLE.get(topic_bytes)
    if kind != MESSAGE_STREAM or known is None:
        what = "an ack" if kind == MESSAGE_ACK else repr(topic_bytes.decode(errors="replace"))
        raise WireError(f"a STREAM frame must carry a record of a known topic, not {what}")
    if not _USABLE_TXID.fullmatch(txid):
        if not txid:
            raise WireError("the record has no txid to acknowledge it by")
        raise WireError(f"a txid must be 1-{MAX_TXID_BYTES} bytes, without NUL or newline")
    topic, message_class = known
    try:
        message = message_class.FromString(payload)
    except DecodeError as exc:
        raise WireError(f"malformed {topic!r} payload: {exc}") from exc
    if topic == TOPIC_DATA:
        # Each regex is cheaper than a `bytes in` test before it would be.
        if (
            _MAY_BE_SCIENTIFIC.search(payload) or _MAY_BE_LOCATION.search(payload)
        ) and normalise_payload(message):
            payload = message.SerializeToString()
        return topic, txid, payload, len(message.data), message.is_resend
    return topic, txid, payload, len(message.alerts) if topic == TOPIC_ALERTS else 0, False


def normalise_payload(payload: Any) -> bool:
    """Rewrite a `Payload` in place as the reference server does before dispatch; True if it
    changed anything.

    A string `Location` like `(37.412374 N, 122.145867 W)` becomes a `LocationValue`, and a
    scientific-notation string becomes a fixed 5-decimal string.
    """
    changed = False
    for datum in payload.data:
        value = datum.value
        if not value.HasField("string_value"):
            continue
        text = value.string_value
        if datum.key == _LOCATION_NUMBER:
            location = parse_location_text(text)
            if location is not None:
                value.location_value.latitude, value.location_value.longitude = location
                changed = True
                continue
        if _SCIENTIFIC.match(text):
            value.string_value = f"{float(text):.5f}"
            changed = True
    return changed


def parse_location_text(text: str) -> Location | None:
    """Parse `(lat N|S, lon E|W)` into signed (lat, lon), or None when it is not that shape."""
    match = _LOCATION_TEXT.match(text.strip())
    if match is None:
        return None
    lat, lat_side, lon, lon_side = match.groups()
    try:
        latitude, longitude = float(lat), float(lon)
    except ValueError:
        return None
    return (
        -latitude if lat_side == "S" else latitude,
        -longitude if lon_side == "W" else longitude,
    )


def data_values(payload: Any) -> dict[str, DecodedValue]:
    """A `Payload`'s data as field name -> plain value; unknown numbers as `Field<n>`."""
    names = vehicle_data_pb2.Field.DESCRIPTOR.values_by_number
    values: dict[str, DecodedValue] = {}
    for datum in payload.data:
        enum_value = names.get(datum.key)
        name = enum_value.name if enum_value is not None else f"Field{datum.key}"
        values[name] = from_value(datum.value)
    return values


def signal_count(record: DecodedRecord) -> int:
    """Billable signals: one per `Datum` of a `V` record, one per alert of an `alerts` record."""
    if record.message is None:
        return 0
    if record.envelope.topic == TOPIC_DATA:
        return len(record.message.data)
    if record.envelope.topic == TOPIC_ALERTS:
        return len(record.message.alerts)
    return 0
