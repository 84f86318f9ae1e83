"""durable telemetry delivery across processes: leases, and the config receivers' positions
and delivery log

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-08 01:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_WHEN = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "telemetry_leases",
        sa.Column("name", sa.String(100), primary_key=True),
        sa.Column("owner", sa.String(100), nullable=False),
        sa.Column("expires_at", _WHEN, nullable=False),
    )
    op.create_table(
        "telemetry_receivers",
        sa.Column(
            "config_id",
            _ID,
            sa.ForeignKey("telemetry_configs.id", ondelete="CASCADE"),
            primary_key=True,
            autoincrement=False,
        ),
        sa.Column("client_id", sa.String(64), nullable=False),
        sa.Column("vin", sa.String(17), nullable=False),
        sa.Column("delivered_through", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", _WHEN, nullable=False),
    )
    op.create_index("ix_telemetry_receivers_client_id", "telemetry_receivers", ["client_id"])
    op.create_table(
        "telemetry_receiver_deliveries",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column(
            "config_id",
            _ID,
            sa.ForeignKey("telemetry_configs.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("client_id", sa.String(64), nullable=False),
        sa.Column("vin", sa.String(17), nullable=False),
        sa.Column("first_record_id", sa.BigInteger(), nullable=False),
        sa.Column("last_record_id", sa.BigInteger(), nullable=False),
        sa.Column("records", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", _WHEN, nullable=False),
        sa.Column("updated_at", _WHEN, nullable=False),
    )
    op.create_index(
        "ix_telemetry_receiver_deliveries_config_id",
        "telemetry_receiver_deliveries",
        ["config_id"],
    )
    op.create_index(
        "ix_telemetry_receiver_deliveries_client_id",
        "telemetry_receiver_deliveries",
        ["client_id"],
    )


def downgrade() -> None:
    op.drop_table("telemetry_receiver_deliveries")
    op.drop_table("telemetry_receivers")
    op.drop_table("telemetry_leases")
