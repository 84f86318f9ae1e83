"""Vehicle alerts: fleet-telemetry `VehicleAlerts` in, Tesla's `recent_alerts` items out."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from google.protobuf.message import DecodeError
from tesla_protocol.telemetry import vehicle_alert_pb2

RECENT_ALERTS_KEPT = 20

# What the owner's app would say; alerts not listed here show their name.
USER_TEXT = {
    "ChargingComplete": "Charging complete",
    "SentryModeEvent": "Sentry Mode recorded an event",
    "TirePressureLow": "Tire pressure low - check tires",
}


class AlertDecodeError(ValueError):
    """The ALERTS body is not a VehicleAlerts message."""


def encode_alerts(vin: str, alerts: list[tuple[str, list[str], datetime]]) -> bytes:
    """A `VehicleAlerts` with (name, audiences, started_at) entries, as a car sends it."""
    message = vehicle_alert_pb2.VehicleAlerts(vin=vin)
    message.created_at.FromDatetime(datetime.now(UTC))
    for name, audiences, started_at in alerts:
        alert = message.alerts.add(name=name)
        alert.audiences.extend(vehicle_alert_pb2.Audience.Value(a) for a in audiences)
        alert.started_at.FromDatetime(started_at)
    return bytes(message.SerializeToString())


def decode_alerts(body: bytes) -> list[dict[str, Any]]:
    """Tesla's `recent_alerts` items for every alert in a `VehicleAlerts` body."""
    message = vehicle_alert_pb2.VehicleAlerts()
    try:
        message.ParseFromString(body)
    except DecodeError as exc:
        raise AlertDecodeError(f"ALERTS body is not a VehicleAlerts message: {exc}") from exc
    items = []
    for alert in message.alerts:
        started = alert.started_at.ToDatetime(tzinfo=UTC)
        items.append(
            {
                "name": alert.name,
                "time": started.isoformat().replace("+00:00", "Z"),
                "audience": [_audience(vehicle_alert_pb2.Audience.Name(a)) for a in alert.audiences]
                or ["customer"],
                "user_text": USER_TEXT.get(alert.name, alert.name),
            }
        )
    return items


def _audience(name: str) -> str:
    """`ServiceFix` → `service-fix`, as Tesla's recent_alerts spells audiences."""
    return {"ServiceFix": "service-fix"}.get(name, name.lower())
