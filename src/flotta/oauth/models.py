"""OAuth records: apps (clients), consent grants, authorization codes and refresh tokens."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from flotta.db.base import Base, UTCDateTime

_ID = BigInteger().with_variant(Integer, "sqlite")


class OAuthClient(Base):
    """A developer's app application and, once approved, an OAuth client.

    The secret (confidential apps only) is stored as HMAC-SHA256. `status` is
    "pending", "approved" or "rejected"; only approved apps can obtain tokens.
    First-party clients (the owner app's `ownerapi`) need no consent record.
    """

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
    description: Mapped[str] = mapped_column(Text, default="")
    intended_use: Mapped[str] = mapped_column(Text, default="")
    website: Mapped[str] = mapped_column(String(500), default="")
    domain: Mapped[str] = mapped_column(String(253), default="")
    allowed_origins: Mapped[list[str]] = mapped_column(JSON, default=list)
    first_party: Mapped[bool] = mapped_column(Boolean, default=False)
    review_reason: Mapped[str | None] = mapped_column(Text, nullable=True, default=None)
    reviewed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    secret_created_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # The app's P-256 command key as an uncompressed point in hex (04…, 130 chars), fetched
    # from its domain's .well-known path or uploaded in the portal.
    public_key: Mapped[str | None] = mapped_column(String(130), nullable=True, default=None)
    # Set by POST /api/1/partner_accounts; third-party tokens of apps without it get 412.
    partner_registered_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class ConsentGrant(Base):
    """What one customer allowed one app: scopes and the devices it may reach."""

    __tablename__ = "oauth_grants"

    id: Mapped[int] = mapped_column(_ID, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    client_pk: Mapped[int] = mapped_column(
        ForeignKey("oauth_clients.id", ondelete="CASCADE"), index=True
    )
    scopes: Mapped[list[str]] = mapped_column(JSON)
    # Device references "vehicle:<fleet id>" or "energy_site:<id>".
    devices: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class AuthorizationCode(Base):
    """RFC 6749 §4.1.2 code, single use; `family_id` is what its exchange issued."""

    __tablename__ = "oauth_codes"

    id: Mapped[int] = mapped_column(_ID, primary_key=True, autoincrement=True)
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    client_pk: Mapped[int] = mapped_column(
        ForeignKey("oauth_clients.id", ondelete="CASCADE"), index=True
    )
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    redirect_uri: Mapped[str] = mapped_column(String(2000))
    scopes: Mapped[list[str]] = mapped_column(JSON)
    code_challenge: Mapped[str | None] = mapped_column(String(128), nullable=True)
    nonce: Mapped[str | None] = mapped_column(String(255), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    family_id: Mapped[int | None] = mapped_column(_ID, nullable=True)


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
