"""A streamed record as it leaves the platform: what every sink and stream delivers."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flotta.telemetry.envelope import stream_envelope


class StreamRecord:
    """One ingested record for one app. `cursor` is its id in the record log (resume point);
    `payload` is the fleet-telemetry protobuf message of its topic, `envelope` the same record
    in the flatbuffers envelope a fleet-telemetry server receives.

    Read-only by convention. The envelope is built on first use, since only receivers want it
    and ingest makes one of these per record."""

    __slots__ = (
        "_envelope",
        "client_id",
        "created_at",
        "cursor",
        "payload",
        "signals",
        "topic",
        "txid",
        "vin",
    )

    def __init__(
        self,
        cursor: int,
        client_id: str,
        vin: str,
        topic: str,  # "V", "alerts", "errors" or "connectivity"
        txid: str,
        created_at: datetime,
        signals: int,
        payload: bytes,
        envelope: bytes | None = None,
    ) -> None:
        self.cursor = cursor
        self.client_id = client_id
        self.vin = vin
        self.topic = topic
        self.txid = txid
        self.created_at = created_at
        self.signals = signals
        self.payload = payload
        self._envelope = envelope

    @property
    def envelope(self) -> bytes:
        """The record as a car frames it for a fleet-telemetry server."""
        if self._envelope is None:
            self._envelope = stream_envelope(
                self.topic,
                self.payload,
                vin=self.vin,
                created_at_s=self.created_at.timestamp(),
                txid=self.txid.encode(),
            )
        return self._envelope

    def _key(self) -> tuple[Any, ...]:
        return (
            self.cursor,
            self.client_id,
            self.vin,
            self.topic,
            self.txid,
            self.created_at,
            self.signals,
            self.payload,
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, StreamRecord):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return (
            f"StreamRecord(cursor={self.cursor}, client_id={self.client_id!r}, vin={self.vin!r}, "
            f"topic={self.topic!r}, txid={self.txid!r}, signals={self.signals})"
        )
