"""A streamed record as it leaves the platform: what every sink and stream delivers."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class StreamRecord:
    """One ingested record for one app. `cursor` is its id in the record log (resume point);
    `payload` is the fleet-telemetry protobuf message of its topic, `envelope` the same record
    in the flatbuffers envelope a fleet-telemetry server receives."""

    cursor: int
    client_id: str
    vin: str
    topic: str  # "V", "alerts", "errors" or "connectivity"
    txid: str
    created_at: datetime
    signals: int
    payload: bytes
    envelope: bytes
