"""Account records: the people who own devices (and, later, developers)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from flotta.db.base import Base, UTCDateTime


class User(Base):
    """A device owner or developer account; `id` is the token subject."""

    __tablename__ = "users"

    # Integer on SQLite so it autoincrements (SQLite only does that for INTEGER PRIMARY KEY).
    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    uuid: Mapped[str] = mapped_column(String(36), unique=True, default=lambda: str(uuid.uuid4()))
    email: Mapped[str] = mapped_column(String(320), unique=True)
    full_name: Mapped[str] = mapped_column(String(200), default="")
    region: Mapped[str] = mapped_column(String(4), default="na")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
