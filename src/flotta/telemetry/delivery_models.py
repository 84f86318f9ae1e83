"""Tables of durable delivery across processes: leases (which process delivers what), each
config receiver's position in the record log, and the receivers' delivery log."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from flotta.db.base import Base, UTCDateTime

_ID = BigInteger().with_variant(Integer, "sqlite")


class TelemetryLeaseRow(Base):
    """A lease: `owner` (a process) delivers `name` (`sink:<id>`, `receivers:<client_id>`)
    until `expires_at`; taken and renewed with compare-and-set statements (`leases.py`)."""

    __tablename__ = "telemetry_leases"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    owner: Mapped[str] = mapped_column(String(100))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())


class TelemetryReceiverRow(Base):
    """Where delivery to a config's own receiver (its hostname:port) stands: the last record
    delivered (or dead-lettered); removed with the config."""

    __tablename__ = "telemetry_receivers"

    config_id: Mapped[int] = mapped_column(
        _ID,
        ForeignKey("telemetry_configs.id", ondelete="CASCADE"),
        primary_key=True,
        autoincrement=False,
    )
    client_id: Mapped[str] = mapped_column(String(64), index=True)
    vin: Mapped[str] = mapped_column(String(17))
    delivered_through: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class TelemetryReceiverDeliveryRow(Base):
    """A batch a config's receiver did not take at the first attempt: `retrying` while it is
    retried, then `delivered`, or `dead` once the receiver refused it `max_attempts` times."""

    __tablename__ = "telemetry_receiver_deliveries"

    id: Mapped[int] = mapped_column(_ID, primary_key=True, autoincrement=True)
    config_id: Mapped[int] = mapped_column(
        _ID, ForeignKey("telemetry_configs.id", ondelete="CASCADE"), index=True
    )
    client_id: Mapped[str] = mapped_column(String(64), index=True)
    vin: Mapped[str] = mapped_column(String(17))
    first_record_id: Mapped[int] = mapped_column(BigInteger)
    last_record_id: Mapped[int] = mapped_column(BigInteger)
    records: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))  # "retrying" | "delivered" | "dead"
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True, default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
