"""Streaming telemetry's tables: configs per app and vehicle, errors cars report, the record
log the streams resume from (in groups), and each app's sinks with their delivery log."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
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
    # AUTOINCREMENT: an id names a config to cars and ingest, so SQLite must never reuse one.
    __table_args__ = (UniqueConstraint("client_id", "vin"), {"sqlite_autoincrement": True})

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


class TelemetryRecordGroupRow(Base):
    """Streamed records as ingested, for one app and one car: the records of that pair that
    one ingest batch committed, in arrival order.

    Each record has its own cursor (what streams resume from, sinks and receivers deliver
    through): `first_cursor` + its index in the group, up to `last_cursor`. Cursors increase
    in commit order across all groups and are never reused. `body` holds each record's topic,
    signals and protobuf payload (`flotta.telemetry.recordlog` encodes it); `txids` each
    record's txid, one per line, with a newline before the first and after the last, so a
    resend can be found by its txid. All records of a group share `created_at`, the time the
    batch was taken for commit.
    """

    __tablename__ = "telemetry_record_groups"
    __table_args__ = (
        Index("ix_telemetry_record_groups_client_cursor", "client_id", "last_cursor"),
        Index("ix_telemetry_record_groups_client_time", "client_id", "created_at"),
    )

    first_cursor: Mapped[int] = mapped_column(_ID, primary_key=True, autoincrement=False)
    last_cursor: Mapped[int] = mapped_column(BigInteger)
    client_id: Mapped[str] = mapped_column(String(64))
    vin: Mapped[str] = mapped_column(String(17), index=True)
    records: Mapped[int] = mapped_column(Integer)
    signals: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    txids: Mapped[str] = mapped_column(Text)
    body: Mapped[bytes] = mapped_column(LargeBinary)


class TelemetrySinkRow(Base):
    """Where an app's records go besides the config's own receiver: a webhook, NATS
    JetStream, MQTT or Redis Streams, carrying JSON or protobuf."""

    __tablename__ = "telemetry_sinks"

    id: Mapped[int] = mapped_column(_ID, primary_key=True, autoincrement=True)
    client_id: Mapped[str] = mapped_column(String(64), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # adapters.sinks.KINDS
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
