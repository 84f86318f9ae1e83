"""Sharing records: single-use invitations and the drivers who redeemed them."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from flotta.db.base import Base, UTCDateTime

# Integer on SQLite so the primary keys autoincrement there too.
_ID = BigInteger().with_variant(Integer, "sqlite")


class Invitation(Base):
    """A share invite for one vehicle: `pending` until redeemed or revoked, 24 h at most."""

    __tablename__ = "invitations"

    id: Mapped[int] = mapped_column(_ID, primary_key=True, autoincrement=True)
    vehicle_id: Mapped[int] = mapped_column(
        ForeignKey("vehicles.id", ondelete="CASCADE"), index=True
    )
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    code: Mapped[str] = mapped_column(String(64), unique=True)
    # Set when the invite was sent to an address (tescmd's `POST …/drivers {email}`).
    email: Mapped[str | None] = mapped_column(String(320), nullable=True)
    state: Mapped[str] = mapped_column(String(10), default="pending")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    redeemed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    redeemed_by: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), nullable=True
    )


class Driver(Base):
    """An account allowed to drive and see someone else's vehicle."""

    __tablename__ = "drivers"
    __table_args__ = (UniqueConstraint("vehicle_id", "user_id"),)

    id: Mapped[int] = mapped_column(_ID, primary_key=True, autoincrement=True)
    vehicle_id: Mapped[int] = mapped_column(ForeignKey("vehicles.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
