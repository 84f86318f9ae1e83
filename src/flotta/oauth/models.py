"""OAuth records: apps (clients), refresh-token families and the tokens of each family."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from flotta.db.base import Base, UTCDateTime

_ID = BigInteger().with_variant(Integer, "sqlite")


class OAuthClient(Base):
    """A registered app; its secret (confidential apps only) is stored as HMAC-SHA256."""

    __tablename__ = "oauth_clients"

    id: Mapped[int] = mapped_column(_ID, primary_key=True, autoincrement=True)
    client_id: Mapped[str] = mapped_column(String(64), unique=True)
    secret_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    name: Mapped[str] = mapped_column(String(200))
    owner_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), nullable=True, index=True
    )
    client_type: Mapped[str] = mapped_column(String(16))  # "confidential" | "public"
    redirect_uris: Mapped[list[str]] = mapped_column(JSON, default=list)
    scopes: Mapped[list[str]] = mapped_column(JSON, default=list)
    status: Mapped[str] = mapped_column(String(16), default="approved")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class RefreshFamily(Base):
    """One grant by a user to a client; every rotation of its refresh token stays in it."""

    __tablename__ = "oauth_refresh_families"

    id: Mapped[int] = mapped_column(_ID, primary_key=True, autoincrement=True)
    client_pk: Mapped[int] = mapped_column(
        ForeignKey("oauth_clients.id", ondelete="CASCADE"), index=True
    )
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    scopes: Mapped[list[str]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    revoked_reason: Mapped[str | None] = mapped_column(String(32), nullable=True)


class RefreshToken(Base):
    """One refresh token of a family, known only by its HMAC; single use."""

    __tablename__ = "oauth_refresh_tokens"

    id: Mapped[int] = mapped_column(_ID, primary_key=True, autoincrement=True)
    family_id: Mapped[int] = mapped_column(
        ForeignKey("oauth_refresh_families.id", ondelete="CASCADE"), index=True
    )
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # Exchanged for a new token at this time (the grace period runs from here).
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # Replaced, unused, by a retry inside the grace period: presenting it again is reuse.
    superseded_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


def as_list(value: Any) -> list[str]:
    """A JSON column's list of strings."""
    return [str(v) for v in value or []]
