"""Energy-site records: the site, its metered intervals and its off-grid (backup) events."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, BigInteger, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from flotta.db.base import Base, UTCDateTime

_ID = BigInteger().with_variant(Integer, "sqlite")


class EnergySite(Base):
    """A home's energy site. `id` is the `energy_site_id` clients see; `site_uid` its `id`."""

    __tablename__ = "energy_sites"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    site_uid: Mapped[str] = mapped_column(String(40), unique=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    site_name: Mapped[str] = mapped_column(String(100), default="")
    time_zone: Mapped[str] = mapped_column(String(64))
    resource_type: Mapped[str] = mapped_column(String(16))
    gateway_din: Mapped[str] = mapped_column(String(64))
    # Installed hardware and where it is: what site_info and products describe.
    spec: Mapped[dict[str, object]] = mapped_column(JSON, default=dict)
    # HMAC-SHA256 of the site's gateway credential; the credential itself is never stored.
    credential_hash: Mapped[str] = mapped_column(String(64))
    installed_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class EnergyInterval(Base):
    """Energy (Wh) of each source-to-sink flow over one 5-minute interval."""

    __tablename__ = "energy_intervals"
    __table_args__ = (UniqueConstraint("site_id", "start_at"),)

    id: Mapped[int] = mapped_column(_ID, primary_key=True, autoincrement=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("energy_sites.id", ondelete="CASCADE"))
    start_at: Mapped[datetime] = mapped_column(UTCDateTime())
    seconds: Mapped[int] = mapped_column(Integer)
    solar_to_home: Mapped[int] = mapped_column(Integer, default=0)
    solar_to_battery: Mapped[int] = mapped_column(Integer, default=0)
    solar_to_grid: Mapped[int] = mapped_column(Integer, default=0)
    grid_to_home: Mapped[int] = mapped_column(Integer, default=0)
    grid_to_battery: Mapped[int] = mapped_column(Integer, default=0)
    battery_to_home: Mapped[int] = mapped_column(Integer, default=0)
    battery_to_grid: Mapped[int] = mapped_column(Integer, default=0)
    wall_connector: Mapped[int] = mapped_column(Integer, default=0)


class EnergyBackupEvent(Base):
    """A stretch the site ran islanded from the grid (`calendar_history kind=backup`)."""

    __tablename__ = "energy_backup_events"
    __table_args__ = (UniqueConstraint("site_id", "started_at"),)

    id: Mapped[int] = mapped_column(_ID, primary_key=True, autoincrement=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("energy_sites.id", ondelete="CASCADE"))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    duration_s: Mapped[int] = mapped_column(Integer)
