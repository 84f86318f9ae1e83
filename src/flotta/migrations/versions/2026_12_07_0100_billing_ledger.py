"""billing ledger: usage events and daily totals, invoices, thresholds, budgets, notices

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07 01:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_WHEN = sa.DateTime(timezone=True)


def _account(primary_key: bool = False) -> sa.Column[int]:
    return sa.Column(
        "account_id",
        _ID,
        sa.ForeignKey("users.id", ondelete="CASCADE"),
        primary_key=primary_key,
        nullable=False,
    )


def upgrade() -> None:
    op.create_table(
        "usage_events",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("key", sa.String(64), nullable=False),
        _account(),
        sa.Column("client_id", sa.String(64), nullable=False),
        sa.Column("device", sa.String(64), nullable=False),
        sa.Column("category", sa.String(16), nullable=False),
        sa.Column("quantity", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("occurred_at", _WHEN, nullable=False),
        sa.UniqueConstraint("key"),
    )
    op.create_table(
        "usage_daily",
        _account(primary_key=True),
        sa.Column("client_id", sa.String(64), primary_key=True),
        sa.Column("device", sa.String(64), primary_key=True),
        sa.Column("category", sa.String(16), primary_key=True),
        sa.Column("day", sa.Date(), primary_key=True),
        sa.Column("quantity", sa.BigInteger(), nullable=False),
    )
    op.create_table(
        "billing_accounts",
        _account(primary_key=True),
        sa.Column("threshold", sa.String(32), nullable=True),
        sa.Column("card_brand", sa.String(32), nullable=True),
        sa.Column("card_last4", sa.String(4), nullable=True),
        sa.Column("card_expiry", sa.String(7), nullable=True),
        sa.Column("card_added_at", _WHEN, nullable=True),
    )
    op.create_table(
        "billing_app_budgets",
        sa.Column("client_id", sa.String(64), primary_key=True),
        _account(),
        sa.Column("budget", sa.String(32), nullable=False),
    )
    op.create_index("ix_billing_app_budgets_account_id", "billing_app_budgets", ["account_id"])
    op.create_table(
        "billing_notices",
        _account(primary_key=True),
        sa.Column("month", sa.String(7), primary_key=True),
        sa.Column("kind", sa.String(96), primary_key=True),
        sa.Column("sent_at", _WHEN, nullable=False),
    )
    op.create_table(
        "invoices",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        _account(),
        sa.Column("month", sa.String(7), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("lines", sa.JSON(), nullable=False),
        sa.Column("subtotal", sa.String(64), nullable=False),
        sa.Column("credit_applied", sa.String(64), nullable=False),
        sa.Column("total", sa.String(32), nullable=False),
        sa.Column("closed_at", _WHEN, nullable=False),
        sa.UniqueConstraint("account_id", "month"),
    )
    op.create_index("ix_invoices_account_id", "invoices", ["account_id"])


def downgrade() -> None:
    op.drop_table("invoices")
    op.drop_table("billing_notices")
    op.drop_table("billing_app_budgets")
    op.drop_table("billing_accounts")
    op.drop_table("usage_daily")
    op.drop_table("usage_events")
