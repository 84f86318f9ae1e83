"""Streamed records for the sink tests, built with the real wire encoder."""

from __future__ import annotations

from datetime import UTC, datetime

from flotta.telemetry.emitter import TelemetryRecord, TelemetryValue
from flotta.telemetry.records import StreamRecord
from flotta.telemetry.wire import Alert, decode_record, encode_alerts, encode_data, signal_count

VIN = "5YJ3E1EA7KF000001"
OTHER_VIN = "7SAYGDEE1PF000002"
CLIENT_ID = "app-sinks"
T = 1_767_268_800.0  # 2026-01-01T12:00:00Z

VALUES: dict[str, TelemetryValue] = {
    "VehicleSpeed": 34.5,
    "Location": (37.412374, -122.145867),
    "Gear": "ShiftStateD",
    "Soc": 80,
}


def _record(cursor: int, frame: bytes, client_id: str) -> StreamRecord:
    decoded = decode_record(frame)
    return StreamRecord(
        cursor=cursor,
        client_id=client_id,
        vin=decoded.vin,
        topic=decoded.topic,
        txid=decoded.txid.decode(),
        created_at=datetime.fromtimestamp(T + cursor, UTC),
        signals=signal_count(decoded),
        payload=decoded.envelope.payload,
        envelope=frame,
    )


def data_record(
    cursor: int,
    *,
    vin: str = VIN,
    values: dict[str, TelemetryValue] | None = None,
    client_id: str = CLIENT_ID,
) -> StreamRecord:
    """A typed `V` record numbered `cursor` (its txid is the cursor too)."""
    telemetry = TelemetryRecord(seq=cursor, created_at_s=T + cursor, data=values or VALUES)
    return _record(cursor, encode_data(telemetry, vin=vin, prefer_typed=True), client_id)


def alerts_record(cursor: int, *, vin: str = VIN, client_id: str = CLIENT_ID) -> StreamRecord:
    """An `alerts` record: one alert raised twice (ended, then active again)."""
    alerts = [
        Alert("ChargePortFault", started_at_s=T - 60, ended_at_s=T - 30),
        Alert("ChargePortFault", started_at_s=T - 10),
    ]
    frame = encode_alerts(alerts, vin=vin, created_at_s=T + cursor, txid=str(cursor).encode())
    return _record(cursor, frame, client_id)
