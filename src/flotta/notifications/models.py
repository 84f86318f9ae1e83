"""Push-notification subscriptions: which vehicles a mobile device wants alerts from."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from flotta.db.base import Base, UTCDateTime


class PushSubscription(Base):
    """One (device, vehicle) pair an account registered through `/api/1/*subscriptions`."""

    __tablename__ = "push_subscriptions"
    __table_args__ = (
        UniqueConstraint("device_token", "vehicle_id", name="uq_push_device_vehicle"),
    )

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    vehicle_id: Mapped[int] = mapped_column(ForeignKey("vehicles.id", ondelete="CASCADE"))
    device_token: Mapped[str] = mapped_column(String(512))
    device_type: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
