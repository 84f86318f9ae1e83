"""Streaming telemetry's tables: configs per app and vehicle, errors cars report, the record
log the streams resume from, and each app's sinks with their delivery log."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from flotta.db.base import Base, UTCDateTime

_ID = BigInteger().with_variant(Integer, "sqlite")


class TelemetryConfigRow(Base):
    """One app's streaming config on one vehicle (reference §9.1); `version` counts changes.

    `status` is "pending" (not yet acknowledged by the car), "synced" or "error" (the car
    refused it: `error` says why). Removed when the app loses consent or the config is deleted.
    """

    __tablename__ = "telemetry_configs"
    __table_args__ = (UniqueConstraint("client_id", "vin"),)

    id: Mapped[int] = mapped_column(_ID, primary_key=True, autoincrement=True)
    client_id: Mapped[str] = mapped_column(String(64), index=True)
    vin: Mapped[str] = mapped_column(
        String(17), ForeignKey("vehicles.vin", ondelete="CASCADE"), index=True
    )
    config: Mapped[dict[str, Any]] = mapped_column(JSON)
    version: Mapped[int] = mapped_column(Integer, default=1)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    error: Mapped[str | None] = mapped_column(Text, nullable=True, default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    synced_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class TelemetryErrorRow(Base):
    """An error a car reported while streaming for an app (`fleet_telemetry_errors`)."""

    __tablename__ = "telemetry_errors"

    id: Mapped[int] = mapped_column(_ID, primary_key=True, autoincrement=True)
    client_id: Mapped[str] = mapped_column(String(64), index=True)
    vin: Mapped[str] = mapped_column(String(17), index=True)
    name: Mapped[str] = mapped_column(String(100))
    body: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class TelemetryRecordRow(Base):
    """A streamed record as ingested, for one app: `id` is the cursor streams resume from and
    webhooks replay by. `payload` is the fleet-telemetry protobuf message of the `topic`."""

    __tablename__ = "telemetry_records"

    id: Mapped[int] = mapped_column(_ID, primary_key=True, autoincrement=True)
    client_id: Mapped[str] = mapped_column(String(64), index=True)
    vin: Mapped[str] = mapped_column(String(17))
    topic: Mapped[str] = mapped_column(String(16))  # "V", "alerts", "errors", "connectivity"
    txid: Mapped[str] = mapped_column(String(64))
    signals: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    payload: Mapped[bytes] = mapped_column(LargeBinary)


class TelemetrySinkRow(Base):
    """Where an app's records go besides the config's own receiver: a webhook, NATS
    JetStream, MQTT or Redis Streams, carrying JSON or protobuf."""

    __tablename__ = "telemetry_sinks"

    id: Mapped[int] = mapped_column(_ID, primary_key=True, autoincrement=True)
    client_id: Mapped[str] = mapped_column(String(64), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # "webhook" | "nats" | "mqtt" | "redis"
    format: Mapped[str] = mapped_column(String(16), default="json")  # "json" | "protobuf"
    settings: Mapped[dict[str, Any]] = mapped_column(JSON)
    # Standard Webhooks signing secret ("whsec_…"), webhooks only.
    secret: Mapped[str | None] = mapped_column(String(100), nullable=True, default=None)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # The last record id delivered (or dead-lettered): where delivery resumes after a restart.
    delivered_through: Mapped[int] = mapped_column(BigInteger, default=0)


class TelemetryDeliveryRow(Base):
    """One delivery attempt series of a batch of records to a sink: the delivery log, and with
    `dead` set, the dead-letter list the developer sees and can replay."""

    __tablename__ = "telemetry_deliveries"

    id: Mapped[int] = mapped_column(_ID, primary_key=True, autoincrement=True)
    sink_id: Mapped[int] = mapped_column(
        ForeignKey("telemetry_sinks.id", ondelete="CASCADE"), index=True
    )
    first_record_id: Mapped[int] = mapped_column(BigInteger)
    last_record_id: Mapped[int] = mapped_column(BigInteger)
    records: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))  # "delivered" | "retrying" | "dead"
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True, default=None)
    replay: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
