"""Device records: provisioned vehicles, their credentials and presence history."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from flotta.db.base import Base, UTCDateTime


class Vehicle(Base):
    """A vehicle known to the platform. `id` is the Fleet id clients see (`id`, `id_s`)."""

    __tablename__ = "vehicles"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    vehicle_id: Mapped[int] = mapped_column(BigInteger, unique=True)
    vin: Mapped[str] = mapped_column(String(17), unique=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    display_name: Mapped[str] = mapped_column(String(100), default="")
    model: Mapped[str] = mapped_column(String(40))
    option_codes: Mapped[str] = mapped_column(String(500), default="")
    # HMAC-SHA256 of the device credential; the credential itself is never stored.
    credential_hash: Mapped[str] = mapped_column(String(64))
    command_signing: Mapped[str] = mapped_column(String(10), default="allowed")
    config: Mapped[dict[str, object]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class PresenceEvent(Base):
    """A recorded change of a device's link: connected, disconnected, asleep, online."""

    __tablename__ = "presence_events"
    __table_args__ = (Index("ix_presence_events_vehicle_at", "vehicle_id", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    vehicle_id: Mapped[int] = mapped_column(ForeignKey("vehicles.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    detail: Mapped[str] = mapped_column(String(200), default="")
