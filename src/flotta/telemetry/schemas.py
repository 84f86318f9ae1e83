"""The telemetry stream and sink API's I/O: record renderings and request bodies (sink settings
are checked by `flotta.adapters.sinks.validate_sink_settings`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool

from flotta.adapters.sinks import SinkKind, shown_settings
from flotta.telemetry.envelope import stream_envelope
from flotta.telemetry.formats import SinkFormat
from flotta.telemetry.models import TelemetryDeliveryRow, TelemetrySinkRow
from flotta.telemetry.records import StreamRecord


class SinkCreate(BaseModel):
    """`POST /flotta/v1/telemetry/sinks`."""

    model_config = ConfigDict(extra="forbid")

    kind: SinkKind
    format: SinkFormat = "json"
    settings: dict[str, Any] = Field(default_factory=dict)
    enabled: StrictBool = True


class ReplayRequest(BaseModel):
    """`POST /flotta/v1/telemetry/sinks/{id}/replay`: records created in [from, to]."""

    model_config = ConfigDict(populate_by_name=True, extra="forbid")

    start: datetime = Field(alias="from")
    end: datetime = Field(alias="to")


def record_envelope(record: StreamRecord) -> bytes:
    """A record as a fleet-telemetry flatbuffers envelope whose message id is its cursor."""
    return stream_envelope(
        record.topic,
        record.payload,
        vin=record.vin,
        created_at_s=record.created_at.timestamp(),
        txid=record.txid.encode(),
        message_id=str(record.cursor).encode(),
    )


def sink_json(row: TelemetrySinkRow, *, with_secret: bool = False) -> dict[str, Any]:
    """A sink as the API shows it: the webhook signing secret only when it was just created,
    the secrets among its settings never."""
    body: dict[str, Any] = {
        "id": row.id,
        "kind": row.kind,
        "format": row.format,
        "settings": shown_settings(row.settings),  # secrets hidden
        "enabled": row.enabled,
        "created_at": row.created_at.isoformat(),
        "delivered_through": row.delivered_through,
    }
    if with_secret and row.secret is not None:
        body["secret"] = row.secret
    return body


def delivery_json(row: TelemetryDeliveryRow) -> dict[str, Any]:
    """One delivery log entry (a dead letter when `status` is dead)."""
    return {
        "id": row.id,
        "sink_id": row.sink_id,
        "first_record_id": row.first_record_id,
        "last_record_id": row.last_record_id,
        "records": row.records,
        "status": row.status,
        "attempts": row.attempts,
        "last_error": row.last_error,
        "replay": row.replay,
        "created_at": row.created_at.isoformat(),
        "updated_at": row.updated_at.isoformat(),
    }
