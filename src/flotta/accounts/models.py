"""Account records: owners and developers, their one-time links, recovery codes and web sessions."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, Boolean, ForeignKey, Integer, String
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
    # argon2id; None for accounts that cannot sign in to the portal (provisioned owners).
    password_hash: Mapped[str | None] = mapped_column(String(255), nullable=True, default=None)
    email_verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # Base32 TOTP secret (RFC 6238); enrolment completes when `totp_enabled_at` is set.
    totp_secret: Mapped[str | None] = mapped_column(String(64), nullable=True, default=None)
    totp_enabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # The last accepted time step: a code from it or an earlier step is a replay.
    totp_last_step: Mapped[int | None] = mapped_column(BigInteger, nullable=True, default=None)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    # Set on password reset: refresh tokens issued before it answer login_required.
    credentials_changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


_ID = BigInteger().with_variant(Integer, "sqlite")


class AccountToken(Base):
    """A one-time link sent by e-mail (verify the address, reset the password); stored hashed."""

    __tablename__ = "account_tokens"

    id: Mapped[int] = mapped_column(_ID, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    purpose: Mapped[str] = mapped_column(String(16))  # "verify_email" | "reset_password"
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class RecoveryCode(Base):
    """A single-use MFA recovery code, stored hashed."""

    __tablename__ = "recovery_codes"

    id: Mapped[int] = mapped_column(_ID, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    code_hash: Mapped[str] = mapped_column(String(64))
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class WebSession(Base):
    """A portal sign-in, known by the HMAC of its cookie value.

    `stage` is "mfa" after a correct password while the TOTP step is pending, "full" after it.
    `csrf_secret` keys the CSRF tokens of the session's forms.
    """

    __tablename__ = "web_sessions"

    id: Mapped[int] = mapped_column(_ID, primary_key=True, autoincrement=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    stage: Mapped[str] = mapped_column(String(8))
    csrf_secret: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
