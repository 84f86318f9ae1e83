"""The billing ledger's tables: usage events, their daily totals, invoices and account settings.

Money is stored as exact text (`prices.exact_text`), never as a float or a SQL NUMERIC that
SQLite would turn into one.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Date, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from flotta.db.base import Base, UTCDateTime

_ID = BigInteger().with_variant(Integer, "sqlite")
_USER = "users.id"


class UsageEventRow(Base):
    """One metered operation: a request, or a batch of streamed signals.

    `key` makes recording idempotent: a batch written again after a commit whose outcome was
    unknown inserts nothing twice.
    """

    __tablename__ = "usage_events"

    id: Mapped[int] = mapped_column(_ID, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(64), unique=True)
    # Not indexed: every read goes through usage_daily, and each index costs every request.
    account_id: Mapped[int] = mapped_column(ForeignKey(_USER, ondelete="CASCADE"))
    client_id: Mapped[str] = mapped_column(String(64))
    # "vehicle:<VIN>" or "site:<energy_site_id>"; "" when the operation names no device.
    device: Mapped[str] = mapped_column(String(64), default="")
    category: Mapped[str] = mapped_column(String(16))
    quantity: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[int] = mapped_column(Integer, default=200)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime())


class UsageDaily(Base):
    """Usage summed per account, app, device, category and UTC day, in the same transaction as
    the events it sums (so the two never disagree)."""

    __tablename__ = "usage_daily"

    account_id: Mapped[int] = mapped_column(ForeignKey(_USER, ondelete="CASCADE"), primary_key=True)
    client_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    device: Mapped[str] = mapped_column(String(64), primary_key=True)
    category: Mapped[str] = mapped_column(String(16), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    quantity: Mapped[int] = mapped_column(BigInteger)


class BillingAccount(Base):
    """An account's excessive-bill threshold and its (simulated) payment method."""

    __tablename__ = "billing_accounts"

    account_id: Mapped[int] = mapped_column(ForeignKey(_USER, ondelete="CASCADE"), primary_key=True)
    # None: the default, equal to the monthly credit (reference §8).
    threshold: Mapped[str | None] = mapped_column(String(32), nullable=True, default=None)
    card_brand: Mapped[str | None] = mapped_column(String(32), nullable=True, default=None)
    card_last4: Mapped[str | None] = mapped_column(String(4), nullable=True, default=None)
    card_expiry: Mapped[str | None] = mapped_column(String(7), nullable=True, default=None)
    card_added_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class AppBudget(Base):
    """A developer's monthly budget for one app: crossing it sends a warning, nothing more."""

    __tablename__ = "billing_app_budgets"

    client_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey(_USER, ondelete="CASCADE"), index=True)
    budget: Mapped[str] = mapped_column(String(32))


class BillingNotice(Base):
    """A warning mail already sent this month (80 % of the threshold, an app over budget)."""

    __tablename__ = "billing_notices"

    account_id: Mapped[int] = mapped_column(ForeignKey(_USER, ondelete="CASCADE"), primary_key=True)
    month: Mapped[str] = mapped_column(String(7), primary_key=True)
    kind: Mapped[str] = mapped_column(String(96), primary_key=True)
    sent_at: Mapped[datetime] = mapped_column(UTCDateTime())


class InvoiceRow(Base):
    """A closed month's invoice; closing the month again finds it and changes nothing."""

    __tablename__ = "invoices"
    __table_args__ = (UniqueConstraint("account_id", "month"),)

    id: Mapped[int] = mapped_column(_ID, primary_key=True, autoincrement=True)
    account_id: Mapped[int] = mapped_column(ForeignKey(_USER, ondelete="CASCADE"), index=True)
    month: Mapped[str] = mapped_column(String(7))
    currency: Mapped[str] = mapped_column(String(3))
    # [{"category", "client_id", "app", "quantity", "units_per_currency_unit", "amount"}]
    lines: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    subtotal: Mapped[str] = mapped_column(String(64))
    credit_applied: Mapped[str] = mapped_column(String(64))
    total: Mapped[str] = mapped_column(String(32))
    closed_at: Mapped[datetime] = mapped_column(UTCDateTime())
